using System.Diagnostics;

namespace TruthProbe.Common;

/// <summary>
/// Progress of long work on stderr: a redrawn bar with items/s and ETA on a terminal, a plain line every
/// few seconds when stderr is redirected, and nothing at all under CI (the CI variable is set).
/// </summary>
public sealed class Progress : IDisposable
{
    private readonly string _label;
    private readonly long _total;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly Mode _mode;
    private readonly TextWriter _to;
    private long _done;
    private double _lastDraw = double.NegativeInfinity;
    private bool _finished;
    private readonly Func<long, long, double, string>? _status;

    private enum Mode { Bar, Lines, Silent }

    /// <param name="to">where to draw (default stderr); a CLI verb passes the error writer it was given.</param>
    /// <param name="status">draws the text after the label from (done, total, seconds) instead of <see cref="Describe"/>.</param>
    public Progress(string label, long total, bool? quiet = null, TextWriter? to = null, Func<long, long, double, string>? status = null)
    {
        _status = status;
        _to = to ?? Console.Error;
        _label = label;
        _total = Math.Max(0, total);
        bool silent = quiet ?? !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI"));
        // A bar only on a terminal: any other writer (a file, a test's buffer) gets plain lines.
        _mode = silent ? Mode.Silent : ReferenceEquals(_to, Console.Error) && !Console.IsErrorRedirected ? Mode.Bar : Mode.Lines;
    }

    public long Done => _done;
    public TimeSpan Elapsed => _clock.Elapsed;

    public void Advance(long items = 1)
    {
        _done += items;
        double now = _clock.Elapsed.TotalSeconds;
        double interval = _mode == Mode.Bar ? 0.1 : 5.0;
        if (_done >= _total || now - _lastDraw >= interval)
        {
            _lastDraw = now;
            Draw(now);
        }
    }

    public static string Describe(long done, long total, double seconds)
    {
        double rate = seconds > 0 ? done / seconds : 0;
        string eta = rate > 0 && total > done ? FormatSpan((total - done) / rate) : "--";
        return $"{done}/{total} {rate:0.0} it/s ETA {eta} elapsed {FormatSpan(seconds)}";
    }

    private void Draw(double seconds)
    {
        if (_mode == Mode.Silent) return;
        string status = (_status ?? Describe)(_done, _total, seconds);
        if (_mode == Mode.Lines)
        {
            _to.WriteLine($"{_label}: {status}");
            return;
        }
        const int width = 24;
        int filled = _total == 0 ? width : (int)Math.Min(width, width * _done / _total);
        _to.Write($"\r{_label} [{new string('#', filled)}{new string('.', width - filled)}] {status}   ");
    }

    public void Dispose()
    {
        if (_finished) return;
        _finished = true;
        if (_mode == Mode.Bar) _to.WriteLine();
    }

    private static string FormatSpan(double seconds)
    {
        var t = TimeSpan.FromSeconds(Math.Max(0, seconds));
        return t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes:00}m" : $"{t.Minutes}m{t.Seconds:00}s";
    }
}
