using System.Globalization;
using TruthProbe.Bench;

if (args is [RssBenchmark.ChildFlag, var childFolder, var kvCache]) return RssBenchmark.Child(childFolder, kvCache);
if (args is [FuzzBench.Flag, .. var formats]) return FuzzBench.Run(formats);
bool quick = args.Contains("--quick");
var only = args.Where(a => !a.StartsWith("--", StringComparison.Ordinal)).ToHashSet(StringComparer.OrdinalIgnoreCase);
var context = new BenchContext(quick, Console.Out);
IBenchmark[] all =
[
    new EngineBenchmark(),
    new GemmBenchmark(),
    new KernelBenchmark(),
    new VisionBenchmark(),
    new QwenVisionBenchmark(),
    new PopePrefixBench(),
    new RssBenchmark(),
    new LlamaCppBenchmark(),
    new EvalBatchBenchmark(),
    new ChairBench(),
    new TrainBenchmark(),
    new TrainStepsBenchmark(),
    new TrainPhasesBenchmark(),
    new ProbeBenchmark(),
    new RowBootstrapBench(),
    new DriftBench(),
    new TruthProbe.Bench.Tokenizers.TokenizerBenchmark(),
    new ImagingBench(),
    new ShardBench(),
    new NonFiniteBench(),
    new DecodeWidthBenchmark(),
];
foreach (var bench in all.Where(b => only.Count == 0 || only.Contains(b.Name)))
{
    Console.WriteLine($"== {bench.Name}");
    bench.Run(context);
}
// The closing lines are the contract: one `ratio NAME VALUE` per figure.
foreach (var (name, value) in context.Ratios)
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ratio {name} {value:0.000}"));
return 0;
