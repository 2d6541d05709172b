using System.Globalization;
using TruthProbe.Common;

namespace TruthProbe.Cli;

/// <summary>
/// The arguments of one verb: positionals, <c>--name value</c> / <c>--name=value</c> options (repeatable)
/// and <c>--flag</c> switches. Every option the verb does not read is reported as unknown, so a typo
/// never passes silently.
/// </summary>
public sealed class Args
{
    private readonly List<string> _positionals = [];
    private readonly Dictionary<string, List<string>> _options = new(StringComparer.Ordinal);
    private readonly HashSet<string> _flags = new(StringComparer.Ordinal);
    private readonly HashSet<string> _read = new(StringComparer.Ordinal);
    private readonly string _verb;

    private Args(string verb) => _verb = verb;

    /// <param name="flagNames">options that take no value, without the leading dashes.</param>
    public static Args Parse(string verb, IReadOnlyList<string> argv, IEnumerable<string> flagNames)
    {
        var flags = new HashSet<string>(flagNames, StringComparer.Ordinal) { "help" };
        var args = new Args(verb);
        for (int i = 0; i < argv.Count; i++)
        {
            string a = argv[i];
            if (a == "--")
            {
                args._positionals.AddRange(argv.Skip(i + 1));
                break;
            }
            if (a.StartsWith("--", StringComparison.Ordinal) && a.Length > 2)
            {
                string name = a[2..];
                string? value = null;
                int eq = name.IndexOf('=');
                if (eq >= 0) { value = name[(eq + 1)..]; name = name[..eq]; }
                if (flags.Contains(name))
                {
                    if (value != null) throw new UserError($"{verb}: --{name} is a switch and takes no value");
                    args._flags.Add(name);
                    continue;
                }
                if (value == null)
                {
                    if (i + 1 >= argv.Count) throw new UserError($"{verb}: --{name} needs a value");
                    value = argv[++i];
                }
                if (!args._options.TryGetValue(name, out var list)) args._options[name] = list = [];
                list.Add(value);
            }
            else args._positionals.Add(a);
        }
        return args;
    }

    public string Verb => _verb;
    public int PositionalCount => _positionals.Count;
    public IReadOnlyList<string> Positionals => _positionals;

    public string Positional(int index, string what)
    {
        if (index >= _positionals.Count) throw new UserError($"{_verb}: missing {what}");
        return _positionals[index];
    }

    public bool Flag(string name)
    {
        _read.Add(name);
        return _flags.Contains(name);
    }

    public string? Get(string name)
    {
        _read.Add(name);
        if (!_options.TryGetValue(name, out var list)) return null;
        if (list.Count > 1) throw new UserError($"{_verb}: --{name} was given {list.Count} times; give it once");
        return list[0];
    }

    public IReadOnlyList<string> GetAll(string name)
    {
        _read.Add(name);
        return _options.TryGetValue(name, out var list) ? list : [];
    }

    public string Required(string name, string what) =>
        Get(name) ?? throw new UserError($"{_verb}: missing --{name} ({what})");

    public string Get(string name, string fallback) => Get(name) ?? fallback;

    public int Int(string name, int fallback)
    {
        string? v = Get(name);
        if (v == null) return fallback;
        if (!int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int x))
            throw new UserError($"{_verb}: --{name} must be an integer, got '{v}'");
        return x;
    }

    public double Double(string name, double fallback) => DoubleOrNull(name) ?? fallback;

    public double? DoubleOrNull(string name)
    {
        string? v = Get(name);
        if (v == null) return null;
        return ParseDouble(v, $"--{name}");
    }

    public double[] Doubles(string name, double[] fallback)
    {
        string? v = Get(name);
        if (v == null) return fallback;
        return v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => ParseDouble(s, $"--{name}")).ToArray();
    }

    public int[] Ints(string name, int[] fallback)
    {
        string? v = Get(name);
        if (v == null) return fallback;
        return v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(s =>
            int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int x)
                ? x : throw new UserError($"{_verb}: --{name} must be a comma-separated list of integers, got '{v}'")).ToArray();
    }

    private double ParseDouble(string v, string what)
    {
        if (!double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double x) || !double.IsFinite(x))
            throw new UserError($"{_verb}: {what} must be a finite number, got '{v}'");
        return x;
    }

    /// <summary>Call after reading every option: anything left over is a typo or an option of another verb.</summary>
    public void EnsureAllRead(int maxPositionals)
    {
        var unknown = _options.Keys.Concat(_flags).Where(k => !_read.Contains(k) && k != "help").ToList();
        if (unknown.Count > 0)
            throw new UserError($"{_verb}: unknown option{(unknown.Count > 1 ? "s" : "")} {string.Join(", ", unknown.Select(u => "--" + u))} (see 'truthprobe {_verb} --help')");
        if (_positionals.Count > maxPositionals)
            throw new UserError($"{_verb}: unexpected argument '{_positionals[maxPositionals]}' (see 'truthprobe {_verb} --help')");
    }
}
