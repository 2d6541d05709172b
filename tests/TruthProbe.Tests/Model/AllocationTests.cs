using TruthProbe.Model;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Model;

public class AllocationTests
{
    /// <summary>Run-state buffers are allocated once: with the cache reserved, a decode step on a model small
    /// enough to stay on one thread allocates not a single byte.</summary>
    [SkippableFact]
    public void DecodeSteps_WithReservedCache_AllocateNothing()
    {
        string bin = SharedData.Path("models", "stories260K", "stories260K.bin");
        using var model = Transformer.Load(bin);
        var state = model.NewState();
        state.Reserve(64);
        int[] one = [1];
        model.Forward(state, [1, 403, 407, 261]);
        for (int i = 0; i < 4; i++) model.Forward(state, one); // warm-up: JIT, thread-static scratch
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 20; i++) one[0] = Generator.ArgMax(model.Forward(state, one));
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
