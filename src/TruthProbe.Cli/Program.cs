using System.CommandLine.Help;
using System.CommandLine.Parsing;
using System.CommandLine;
using TruthProbe.Cli;
using TruthProbe.Common;

return CliMain.Run(args, Console.Out, Console.Error);

namespace TruthProbe.Cli
{
    public static class CliMain
    {
        /// <summary>An error line is cut here: a message may echo a value read from a file, which can be megabytes.</summary>
        public const int MaxErrorChars = 1000;
        /// <summary>Exit code of an unexpected exception (a defect, not bad input): sysexits' EX_SOFTWARE.</summary>
        public const int UnexpectedExitCode = 70;
        public const string DebugFlag = "--debug";

        /// <summary>
        /// Runs one command line; everything is printed to <paramref name="stdout"/> and <paramref name="stderr"/>.
        /// An unexpected exception is one line and exit <see cref="UnexpectedExitCode"/>; with --debug, the full trace.
        /// </summary>
        public static int Run(string[] argv, TextWriter stdout, TextWriter stderr) => Run(argv, stdout, stderr, Verbs.Create());

        /// <summary>The same over a given verb list (tests add a verb that fails in ways no real input reaches any more).</summary>
        internal static int Run(string[] argv, TextWriter stdout, TextWriter stderr, IReadOnlyList<IVerb> verbs)
        {
            bool debug = argv.Contains(DebugFlag);
            try
            {
                return RunVerb(argv.Where(a => a != DebugFlag).ToArray(), stdout, stderr, verbs);
            }
            catch (Exception e) when (e is not UserError)
            {
                stderr.WriteLine(debug
                    ? $"error: unexpected {e}"
                    : OneLine($"error: unexpected {e.GetType().Name}: {e.Message}", suffix: $" (a defect in truthprobe; rerun with {DebugFlag} for the trace)"));
                return UnexpectedExitCode;
            }
        }

        /// <summary>The message on one line, cut to <see cref="MaxErrorChars"/> (the suffix kept whole).</summary>
        public static string OneLine(string message, string suffix = "")
        {
            string line = message.ReplaceLineEndings(" ");
            int room = MaxErrorChars - suffix.Length;
            if (line.Length <= room) return line + suffix;
            int keep = room - 40; // "... (N more characters)" fits in 40
            return $"{line[..keep]}... ({line.Length - keep} more characters){suffix}";
        }

        private static int RunVerb(string[] argv, TextWriter stdout, TextWriter stderr, IReadOnlyList<IVerb> verbs)
        {
            if (argv.Length == 0 || argv[0] is "help" or "--help" or "-h")
            {
                stdout.WriteLine(Help(verbs));
                return argv.Length == 0 ? 1 : 0;
            }
            if (!verbs.Any(v => v.Name.Split(' ')[0] == argv[0]))
            {
                stderr.WriteLine($"error: unknown verb '{string.Join(' ', argv.Take(2))}'\n\n{Help(verbs)}");
                return UserError.ExitCode;
            }
            var (root, byCommand) = Tree(verbs);
            var parsed = root.Parse(argv);
            if (parsed.Action is HelpAction)
            {
                int code = parsed.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false });
                // The verb's prose (formulas, files written) after the generated usage and options.
                if (byCommand.TryGetValue(parsed.CommandResult.Command, out var helped) && helped.Details.Length > 0)
                    stdout.WriteLine(helped.Details.TrimEnd());
                return code;
            }
            string verbName = string.Join(' ', parsed.CommandResult.Command.Parents.OfType<Command>().Where(c => c != root).Select(c => c.Name)
                .Append(parsed.CommandResult.Command.Name));
            string? error = parsed.Errors.Count > 0 ? parsed.Errors[0].Message : UnknownOption(parsed);
            if (error != null)
            {
                stderr.WriteLine(OneLine($"error: {verbName}: {error}", suffix: $" (see 'truthprobe {verbName} --help')"));
                return UserError.ExitCode;
            }
            var verb = byCommand[parsed.CommandResult.Command];
            try
            {
                using var output = ClaimOutput(verb, parsed, stderr);
                return verb.Run(parsed, stdout, stderr);
            }
            catch (UserError e)
            {
                // The library names the field; the option that sets it is this verb's to name.
                string? flag = e.Field == null ? null : "--" + e.Field.Replace('_', '-');
                bool named = flag != null && verb.Symbols.OfType<Option>().Any(o => o.Name == flag);
                stderr.WriteLine(OneLine($"error: {e.Message}", suffix: named ? $" ({flag})" : ""));
                return UserError.ExitCode;
            }
        }

        /// <summary>
        /// A misspelt option before a verb's list of positionals is taken as one more positional by
        /// System.CommandLine ("compare a.npy --tpo-k 3"); no model, map or folder name starts with "--",
        /// so such a positional is reported as the unknown option it is.
        /// </summary>
        private static string? UnknownOption(ParseResult parsed) =>
            parsed.CommandResult.Children.OfType<ArgumentResult>().SelectMany(a => a.Tokens)
                .FirstOrDefault(t => t.Value.StartsWith("--", StringComparison.Ordinal) && t.Value.Length > 2) is { } token
                ? $"unknown option {token.Value.Split('=')[0]}" : null;

        /// <summary>
        /// The verb's --out, checked and locked before the verb does any work (<see cref="OutputTarget"/>): not
        /// one of the paths given as arguments, writable, a folder where the option's help name says DIR (and
        /// no FILE.ext alternative matches the value), else a file. Null when the verb has no --out or it is absent.
        /// </summary>
        private static OutputTarget? ClaimOutput(IVerb verb, ParseResult parsed, TextWriter stderr)
        {
            var option = verb.Symbols.OfType<Option<string>>().FirstOrDefault(o => o.Name == "--out");
            if (option == null || parsed.GetValue(option) is not { } output) return null;
            var outTokens = parsed.GetResult(option)?.Tokens.ToHashSet(ReferenceEqualityComparer.Instance) ?? [];
            var inputs = parsed.Tokens.Where(t => t.Type == TokenType.Argument && !outTokens.Contains(t)).Select(t => t.Value);
            string[] kinds = (option.HelpName ?? "DIR").Split('|');
            bool fileByExtension = kinds.Any(k => k.StartsWith("FILE.", StringComparison.Ordinal) && output.EndsWith(k[4..], StringComparison.OrdinalIgnoreCase));
            return OutputTarget.Claim(output, folder: !fileByExtension && kinds.Contains("DIR"), inputs, stderr);
        }

        /// <summary>Parses a command line against <paramref name="verbs"/> (their option objects take the values).</summary>
        internal static ParseResult Parse(IReadOnlyList<IVerb> verbs, IReadOnlyList<string> argv) => Tree(verbs).Root.Parse(argv.ToArray());

        /// <summary>The command tree: "eval chair" becomes the subcommand chair of eval.</summary>
        private static (Command Root, Dictionary<Command, IVerb> ByCommand) Tree(IReadOnlyList<IVerb> verbs)
        {
            // Named here, not after the executable, so that help reads the same from the tool and from dotnet TruthProbe.Cli.dll.
            var root = new Command("truthprobe") { Options = { new HelpOption() } };
            var byCommand = new Dictionary<Command, IVerb>();
            foreach (var verb in verbs)
            {
                string[] words = verb.Name.Split(' ');
                Command parent = root;
                foreach (string word in words[..^1])
                {
                    var group = parent.Subcommands.FirstOrDefault(c => c.Name == word);
                    if (group == null) parent.Subcommands.Add(group = new Command(word, $"{word} verbs"));
                    parent = group;
                }
                var command = new Command(words[^1], verb.Summary);
                foreach (var symbol in verb.Symbols)
                {
                    if (symbol is Option option) command.Options.Add(option);
                    else command.Arguments.Add((Argument)symbol);
                }
                parent.Subcommands.Add(command);
                byCommand[command] = verb;
            }
            return (root, byCommand);
        }

        private static string Help(IReadOnlyList<IVerb> verbs)
        {
            var lines = verbs.Select(v => $"  {v.Name,-18} {v.Summary}");
            return "truthprobe: Truth Scores of attention heads, lineage audits and TruthProbe gating\n\n" +
                   "usage: truthprobe <verb> [options]   (truthprobe <verb> --help for details)\n\nverbs:\n" +
                   string.Join('\n', lines);
        }
    }
}
