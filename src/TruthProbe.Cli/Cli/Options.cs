using System.CommandLine.Parsing;
using System.CommandLine;
using System.Globalization;

namespace TruthProbe.Cli;

/// <summary>
/// Factories for the CLI's options: each verb declares an option once (name, value name, default,
/// description) with these, and System.CommandLine derives parsing, validation and --help from that
/// declaration. Values are parsed with the invariant culture; a bad value is a parse error of one line
/// naming the option ("--top-k must be an integer, got 'abc'").
/// </summary>
public static class Opt
{
    /// <summary>--out: where the verb writes its files.</summary>
    public static Option<string> Out(string helpName, string description) =>
        new("--out") { HelpName = helpName, Description = description, Required = true };

    /// <summary>--out with a documented default, for the verbs whose output has a natural home.</summary>
    public static Option<string> Out(string helpName, string description, string fallback) =>
        new("--out") { HelpName = helpName, Description = description, DefaultValueFactory = _ => fallback };

    public static Option<string?> Text(string name, string helpName, string description) =>
        new(name) { HelpName = helpName, Description = description };

    public static Option<string> Required(string name, string helpName, string description) =>
        new(name) { HelpName = helpName, Description = description, Required = true };

    public static Option<string> Choice(string name, string fallback, string description, params string[] choices) =>
        OneOfChoices(new Option<string>(name) { HelpName = string.Join('|', choices), Description = description, DefaultValueFactory = _ => fallback }, choices);

    /// <summary>One of <paramref name="choices"/>, or null when absent (the verb's default depends on other inputs).</summary>
    public static Option<string?> ChoiceOrNull(string name, string description, params string[] choices) =>
        OneOfChoices(new Option<string?>(name) { HelpName = string.Join('|', choices), Description = description }, choices);

    private static Option<T> OneOfChoices<T>(Option<T> o, string[] choices)
    {
        o.Validators.Add(r =>
        {
            if (r.Tokens.Count > 0 && !choices.Contains(r.Tokens[^1].Value))
                r.AddError($"{o.Name} must be {OneOf(choices)}, got '{r.Tokens[^1].Value}'");
        });
        return o;
    }

    public static Option<bool> Flag(string name, string description) => new(name) { Description = description };

    /// <summary>An integer with a default, at least <paramref name="min"/>.</summary>
    public static Option<int> Int(string name, string helpName, int fallback, string description, int min = int.MinValue) =>
        new(name)
        {
            HelpName = helpName, Description = description, DefaultValueFactory = _ => fallback,
            CustomParser = r => ParseOne(r, name, s => AtLeast(r, name, ParseInt(s), min)) ?? 0,
        };

    public static Option<int> RequiredInt(string name, string helpName, string description) =>
        new(name) { HelpName = helpName, Description = description, Required = true, CustomParser = r => ParseOne(r, name, ParseInt) ?? 0 };

    /// <summary>An integer that is null when the option is absent (the verb's default depends on other inputs).</summary>
    public static Option<int?> IntOrNull(string name, string helpName, string description, int min = int.MinValue) =>
        new(name) { HelpName = helpName, Description = description, CustomParser = r => ParseOne(r, name, s => AtLeast(r, name, ParseInt(s), min)) };

    public static Option<ulong?> Seed(string name, string description) =>
        new(name)
        {
            HelpName = "S", Description = description,
            CustomParser = r => ParseOne<ulong>(r, name, s => ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out ulong x) ? x : null, "a non-negative integer"),
        };

    public static Option<double?> Double(string name, string helpName, string description) =>
        new(name) { HelpName = helpName, Description = description, CustomParser = r => ParseOne(r, name, ParseDouble, "a finite number") };

    public static Option<double> Double(string name, string helpName, double fallback, string description) =>
        new(name)
        {
            HelpName = helpName, Description = description, DefaultValueFactory = _ => fallback,
            CustomParser = r => ParseOne(r, name, ParseDouble, "a finite number") ?? 0,
        };

    /// <summary>The option's value, or null when it was not given (GetValue gives an empty array for an absent list).</summary>
    public static T? Given<T>(this ParseResult args, Option<T> option) where T : class? => args.GetResult(option) == null ? null : args.GetValue(option);

    /// <summary>A comma-separated list of integers ("1,2,3"); read with <see cref="Given"/>, null when absent.</summary>
    public static Option<int[]?> Ints(string name, string helpName, string description) =>
        new(name) { HelpName = helpName, Description = description, Arity = ArgumentArity.ExactlyOne, CustomParser = r => ParseList(r, name, ParseInt, "a comma-separated list of integers") };

    /// <summary>A comma-separated list of numbers ("0,1.5,3"); read with <see cref="Given"/>, null when absent.</summary>
    public static Option<double[]?> Doubles(string name, string helpName, string description) =>
        new(name) { HelpName = helpName, Description = description, Arity = ArgumentArity.ExactlyOne, CustomParser = r => ParseList(r, name, ParseDouble, "a comma-separated list of finite numbers") };

    /// <summary>An option that may be repeated, each time with one value, kept in order.</summary>
    public static Option<string[]> Repeated(string name, string helpName, string description) =>
        new(name) { HelpName = helpName, Description = description, Arity = ArgumentArity.OneOrMore, DefaultValueFactory = _ => [] };

    public static string OneOf(IReadOnlyList<string> choices) =>
        choices.Count == 1 ? $"'{choices[0]}'" : string.Join(", ", choices.Take(choices.Count - 1).Select(c => $"'{c}'")) + $" or '{choices[^1]}'";

    private static int? ParseInt(string s) => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int x) ? x : null;

    private static double? ParseDouble(string s) =>
        double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double x) && double.IsFinite(x) ? x : null;

    private static T? ParseOne<T>(ArgumentResult r, string name, Func<string, T?> parse, string expected = "an integer") where T : struct
    {
        string text = r.Tokens[^1].Value;
        T? value = parse(text);
        if (value == null) r.AddError($"{name} must be {expected}, got '{text}'");
        return value;
    }

    private static T[]? ParseList<T>(ArgumentResult r, string name, Func<string, T?> parse, string expected) where T : struct
    {
        string text = r.Tokens[^1].Value;
        var items = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(parse).ToList();
        if (items.Any(x => x == null))
        {
            r.AddError($"{name} must be {expected}, got '{text}'");
            return null;
        }
        return items.Select(x => x!.Value).ToArray();
    }

    /// <summary>The value, with a parse error when it is below <paramref name="min"/> (it is still returned, so only one error is reported).</summary>
    private static int? AtLeast(ArgumentResult r, string name, int? value, int min)
    {
        if (value < min) r.AddError($"{name} must be at least {min}, got {value}");
        return value;
    }
}
