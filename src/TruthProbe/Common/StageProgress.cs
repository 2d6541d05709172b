namespace TruthProbe.Common;

/// <summary>
/// One progress line over work made of named stages of unequal cost ("demo: stage 3/8 compare 41% ETA 2m10s"),
/// drawn by <see cref="Progress"/> (a bar on a terminal, a line every few seconds otherwise, nothing under CI).
/// Each stage has a weight, the caller's estimate of its share of the time; the ETA extrapolates the elapsed time
/// over the weighted share done, so it is right from the first stage on when the weights are; stages passed over
/// count as no work. Thread-safe:
/// stages whose parts run in parallel (the demo's family build) advance it from several threads.
/// </summary>
public sealed class StageProgress : IDisposable
{
    private const long Resolution = 1_000_000;
    private readonly (string Name, double Weight)[] _stages;
    private double _totalWeight;
    private readonly Progress _line;
    private readonly object _gate = new();
    private int _stage = -1;
    private double _doneWeight, _units, _unitsDone;

    public StageProgress(string label, IReadOnlyList<(string Name, double Weight)> stages, bool? quiet = null, TextWriter? to = null)
    {
        if (stages.Count == 0 || stages.Any(s => !(s.Weight >= 0))) throw new ArgumentException("stages need non-negative weights", nameof(stages));
        _stages = [.. stages];
        _totalWeight = Math.Max(1e-12, stages.Sum(s => s.Weight));
        _line = new Progress(label, Resolution, quiet, to, Status);
    }

    /// <summary>Starts the stage called <paramref name="name"/> (finishing those before it), made of <paramref name="units"/> equal parts.</summary>
    public void Begin(string name, long units)
    {
        lock (_gate)
        {
            int next = Array.FindIndex(_stages, _stage + 1, s => s.Name == name);
            if (next < 0) throw new ArgumentException($"no stage '{name}' after stage {_stage + 1}", nameof(name));
            // A stage passed over (the family, when it comes from the cache) takes no time: the ETA leaves it out.
            for (int i = _stage + 1; i < next; i++) _totalWeight -= _stages[i].Weight;
            if (_stage >= 0) _doneWeight += _stages[_stage].Weight;
            _totalWeight = Math.Max(1e-12, _totalWeight);
            (_stage, _units, _unitsDone) = (next, Math.Max(1, units), 0);
            Draw();
        }
    }

    public void Advance(long units = 1)
    {
        lock (_gate)
        {
            _unitsDone = Math.Min(_units, _unitsDone + units);
            Draw();
        }
    }

    /// <summary>
    /// A counter for one piece of the current stage that reports its running total (parts done so far, as
    /// <see cref="IProgress{T}"/> callers such as a training loop do); the stage advances by the increments, so
    /// several pieces running at once each take their own counter.
    /// </summary>
    public IProgress<int> Counter() => new RunningTotal(this);

    private double Fraction() => _units > 0 ? _unitsDone / _units : 0;

    /// <summary>The weighted share of the work done, 0 to 1, over the stages not passed over.</summary>
    public double Share
    {
        get { lock (_gate) return _stage < 0 ? 0 : Math.Min(1, (_doneWeight + _stages[_stage].Weight * Fraction()) / _totalWeight); }
    }

    private void Draw()
    {
        double share = Share;
        long target = Math.Min(Resolution - 1, (long)(share * Resolution)); // the end is drawn by Dispose, not by rounding
        if (target > _line.Done) _line.Advance(target - _line.Done);
        else _line.Advance(0);
    }

    private string Status(long done, long total, double seconds)
    {
        double share = (double)done / total;
        string eta = share > 0.005 && done < total ? Span(seconds * (1 - share) / share) : "--";
        string stage = _stage < 0 ? "starting" : $"stage {_stage + 1}/{_stages.Length} {_stages[_stage].Name}";
        return $"{stage} {share * 100:0}% ETA {eta} elapsed {Span(seconds)}";
    }

    private static string Span(double seconds)
    {
        var t = TimeSpan.FromSeconds(Math.Max(0, seconds));
        return t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes:00}m" : $"{t.Minutes}m{t.Seconds:00}s";
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_line.Done < Resolution) _line.Advance(Resolution - _line.Done);
            _line.Dispose();
        }
    }

    private sealed class RunningTotal(StageProgress owner) : IProgress<int>
    {
        private int _last;
        public void Report(int total)
        {
            int step = Interlocked.Exchange(ref _last, total);
            if (total > step) owner.Advance(total - step);
        }
    }
}
