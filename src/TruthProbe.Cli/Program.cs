using TruthProbe.Cli;
using TruthProbe.Common;

return CliMain.Run(args, Console.Out, Console.Error);

namespace TruthProbe.Cli
{
    public static class CliMain
    {
        public static int Run(string[] argv, TextWriter stdout, TextWriter stderr)
        {
            if (argv.Length == 0 || argv[0] is "help" or "--help" or "-h")
            {
                stdout.WriteLine(Help());
                return argv.Length == 0 ? 1 : 0;
            }
            // Longest match first, so "eval chair" wins over a verb named "eval".
            var verb = Verbs.All
                .Where(v => Matches(v.Name, argv))
                .OrderByDescending(v => v.Name.Split(' ').Length)
                .FirstOrDefault();
            if (verb == null)
            {
                stderr.WriteLine($"error: unknown verb '{string.Join(' ', argv.Take(2))}'\n\n{Help()}");
                return UserError.ExitCode;
            }
            var rest = argv.Skip(verb.Name.Split(' ').Length).ToArray();
            try
            {
                var args = Args.Parse(verb.Name, rest, verb.Flags);
                if (args.Flag("help"))
                {
                    stdout.WriteLine(verb.Usage);
                    return 0;
                }
                return verb.Run(args);
            }
            catch (UserError e)
            {
                stderr.WriteLine($"error: {e.Message}");
                return UserError.ExitCode;
            }
        }

        private static bool Matches(string name, string[] argv)
        {
            var words = name.Split(' ');
            return argv.Length >= words.Length && words.Select((w, i) => argv[i] == w).All(x => x);
        }

        private static string Help()
        {
            var lines = Verbs.All.Select(v => $"  {v.Name,-18} {v.Summary}");
            return "truthprobe: Truth Scores of attention heads, lineage audits and TruthProbe gating\n\n" +
                   "usage: truthprobe <verb> [options]   (truthprobe <verb> --help for details)\n\nverbs:\n" +
                   string.Join('\n', lines);
        }
    }
}
