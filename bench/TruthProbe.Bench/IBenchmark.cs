namespace TruthProbe.Bench;

/// <summary>
/// One benchmark. It measures our code and its ceiling or peer in the same run and reports
/// each figure as <c>ratio NAME VALUE</c>, where VALUE &gt; 1 means we are better than the reference.
/// </summary>
public interface IBenchmark
{
    string Name { get; }
    void Run(BenchContext context);
}

public sealed class BenchContext(bool quick, TextWriter log)
{
    private readonly List<(string Name, double Value)> _ratios = [];

    public bool Quick { get; } = quick;
    public TextWriter Log { get; } = log;
    public IReadOnlyList<(string Name, double Value)> Ratios => _ratios;

    public void Ratio(string name, double value) => _ratios.Add((name, value));
}
