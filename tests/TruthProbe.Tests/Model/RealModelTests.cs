using TruthProbe.Model;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Model;

/// <summary>The three real llama2.c models (stories260K, BabyLlama tok105 and tok361) against their published greedy ids (docs/design.md §8).</summary>
public class RealModelTests
{
    private static int[] Ids(string s) => s.Split(' ').Select(int.Parse).ToArray();

    private static int[] GreedyFromBos(string path, int count)
    {
        using var model = Transformer.Load(path);
        var result = Generator.Generate(model, [1], new GenerationOptions { MaxNewTokens = count });
        return result.NewIds;
    }

    [SkippableFact]
    public void Stories260K_GreedyFromBos_MatchesPublishedIds()
    {
        string path = SharedData.Path("models", "stories260K", "stories260K.bin");
        int[] published = Ids("403 407 261 378 432 383 286 261 376 298 315 421 395 317 426 338 401 396 267 337 410 408 419 292 411 322 265 282 295 433 426 385 328 432 358 394 261 370 432 352");
        Assert.Equal(published, GreedyFromBos(path, 40));
    }

    [SkippableFact]
    public void BabyLlamaTok105_GreedyFromBos_MatchesPublishedIds()
    {
        string path = SharedData.Path("models", "babyllama-128d-tok105", "model5000.bin");
        int[] published = Ids("3 34 9 22 4 3 18 20 7 9 3 5 3 6 10 16 4 25 3 6 8 4 13 4 3 17 5 12 3 5 3 14 10 6 6 14 4 3 21 10");
        Assert.Equal(published, GreedyFromBos(path, 40));
    }

    [SkippableFact]
    public void BabyLlamaTok361_GreedyFromBos_MatchesPublishedIds()
    {
        string path = SharedData.Path("models", "babyllama-128d-tok361", "model5000.bin");
        int[] published = Ids("259 290 265 278 260 259 274 276 263 265 259 261 259 262 266 272 260 281 259 262");
        Assert.Equal(published, GreedyFromBos(path, 20));
    }
}
