using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace TruthProbe.Bench;

/// <summary>
/// Temporary folders of the benchmarks. Each benchmark deletes its own in a finally block, but a benchmark stopped
/// by SIGTERM or Ctrl-C never reaches it, and `rss7b` leaves 13 GB of random weights behind; the signal handlers
/// delete whatever is still registered before the process ends.
/// </summary>
internal static class BenchTemp
{
    private static readonly ConcurrentDictionary<string, byte> Live = new();
    private static readonly PosixSignalRegistration[] Handlers =
        [PosixSignalRegistration.Create(PosixSignal.SIGTERM, _ => DeleteLive()), PosixSignalRegistration.Create(PosixSignal.SIGINT, _ => DeleteLive())];

    /// <summary>A new folder under the temp directory, named PREFIX + random, removed on SIGTERM/SIGINT if still there.</summary>
    public static string Create(string prefix)
    {
        GC.KeepAlive(Handlers); // a registration is undone when it is collected
        string folder = Directory.CreateTempSubdirectory(prefix).FullName;
        Live[folder] = 0;
        return folder;
    }

    private static void DeleteLive()
    {
        foreach (var folder in Live.Keys)
        {
            try { Directory.Delete(folder, recursive: true); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
    }
}
