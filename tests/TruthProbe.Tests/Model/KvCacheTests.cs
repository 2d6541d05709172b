using TruthProbe.Common;
using TruthProbe.Formats;
using TruthProbe.Model;
using TruthProbe.Numerics;
using TruthProbe.Tests.Common;

namespace TruthProbe.Tests.Model;

/// <summary>
/// The 16-bit KV cache: keys and values rounded to bf16 or fp16 on the way in, and attention on them equal to the
/// float64 softmax of the rounded values, so the rounding is the only change; on every SIMD path, through the
/// per-key kernel (decode, few queries, odd head sizes) and the transposed-key one (prefill).
/// </summary>
public class KvCacheTests
{
    /// <summary>x rounded to nearest even in float64: bf16 keeps 7 stored bits, fp16 10, and below 2^-14 fp16 is
    /// subnormal, a fixed step of 2^-24 (values up to 1 draw a few there).</summary>
    private static float Rounded(KvCacheType type, float x)
    {
        if (x == 0) return x;
        double ulp = Math.Pow(2, Math.Floor(Math.Log2(Math.Abs(x))) - (type == KvCacheType.BF16 ? 7 : 10));
        if (type == KvCacheType.F16) ulp = Math.Max(ulp, Math.Pow(2, -24));
        return (float)(Math.Round(x / ulp, MidpointRounding.ToEven) * ulp);
    }

    private static float Widened(KvCacheType type, ushort bits) =>
        type == KvCacheType.BF16 ? BitConverter.Int32BitsToSingle(bits << 16) : (float)BitConverter.UInt16BitsToHalf(bits);

    public static TheoryData<SimdPath, KvCacheType, int, int, int, int, int, int?> Shapes()
    {
        var data = new TheoryData<SimdPath, KvCacheType, int, int, int, int, int, int?>();
        foreach (var path in new[] { SimdPath.Vector512, SimdPath.Vector256, SimdPath.Generic })
            foreach (var type in new[] { KvCacheType.BF16, KvCacheType.F16 })
                foreach (var (tokens, first, heads, kvHeads, hd, window) in new (int, int, int, int, int, int?)[]
                {
                    (1, 200, 14, 2, 64, null),  // decode after a long prefix: several key tiles, GQA 7:1
                    (3, 70, 4, 4, 8, null),     // a few queries: the per-key kernel, a ragged tile
                    (33, 100, 4, 1, 12, 45),    // prefill on the per-key kernel (head size not a multiple of 16), window
                    (70, 90, 4, 2, 32, 50),     // transposed-key path: cache, window, ragged tiles
                    (130, 5, 2, 1, 16, null),   // transposed-key path: three query blocks
                })
                    data.Add(path, type, tokens, first, heads, kvHeads, hd, window);
        return data;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void FlashAttention_16BitCache_MatchesDoublePrecisionOnRoundedValues(SimdPath path, KvCacheType type, int tokens, int first, int heads, int kvHeads, int hd, int? window)
    {
        int total = first + tokens;
        float[] q = KernelTests.Random(tokens * heads * hd, 1), k = KernelTests.Random(total * kvHeads * hd, 2), v = KernelTests.Random(total * kvHeads * hd, 3);
        for (int i = 0; i < q.Length; i++) q[i] *= 4;   // peaked softmaxes, so the running maximum moves
        ushort[] k16 = new ushort[k.Length], v16 = new ushort[v.Length];
        KvCacheTypes.Narrow(type, k, k16);
        KvCacheTypes.Narrow(type, v, v16);
        float[] kRounded = k16.Select(b => Widened(type, b)).ToArray(), vRounded = v16.Select(b => Widened(type, b)).ToArray();
        for (int i = 0; i < k.Length; i++)
        {
            Assert.Equal(Rounded(type, k[i]), kRounded[i]);
            Assert.Equal(Rounded(type, v[i]), vRounded[i]);
        }

        float[] z = new float[tokens * heads * hd], zFloat = new float[z.Length];
        float[] scores = new float[heads * tokens * total], pattern = new float[scores.Length];
        SimdWidth.Forced = path;
        try
        {
            FlashAttention.Run(q, k16, v16, type, z, tokens, first, heads, kvHeads, hd, window, scores, pattern);
            FlashAttention.Run(q, kRounded, vRounded, zFloat, tokens, first, heads, kvHeads, hd, window);
        }
        finally { SimdWidth.Forced = SimdPath.Auto; }
        FastKernelTests.AssertDoublePrecisionAttention(q, kRounded, vRounded, z, scores, pattern, tokens, first, heads, kvHeads, hd, window);
        // Widening is exact, so the kernel ran the float32 operations on the rounded values: the same bits.
        Assert.Equal(zFloat.Select(BitConverter.SingleToInt32Bits), z.Select(BitConverter.SingleToInt32Bits));
    }

    [Fact]
    public void Narrow_RoundsHalfwayToEvenAndKeepsSpecialValues()
    {
        // 1 + 2^-8 is halfway between bf16 1 and 1 + 2^-7: even is 1. 1 + 3 * 2^-8 rounds up to 1 + 2^-6.
        float[] values = [1f + MathF.Pow(2, -8), 1f + 3 * MathF.Pow(2, -8), float.PositiveInfinity, float.NegativeInfinity, float.NaN, -0f, 1e5f];
        var bf = new ushort[values.Length];
        KvCacheTypes.Narrow(KvCacheType.BF16, values, bf);
        Assert.Equal([0x3F80, 0x3F82, 0x7F80, 0xFF80], bf[..4]);
        Assert.True(float.IsNaN(Widened(KvCacheType.BF16, bf[4])));
        Assert.Equal(0x8000, bf[5]);
        var half = new ushort[values.Length];
        KvCacheTypes.Narrow(KvCacheType.F16, values, half);
        // fp16: 1 + 2^-8 is exact at 10 bits; 1e5 is past fp16's largest value (65504) and becomes infinity.
        Assert.Equal([0x3C04, 0x3C0C, 0x7C00, 0xFC00], half[..4]);
        Assert.True(float.IsNaN(Widened(KvCacheType.F16, half[4])));
        Assert.Equal(0x8000, half[5]);
        Assert.Equal(0x7C00, half[6]);
    }

    [Fact]
    public void Parse_UnknownType_NamesTheChoices()
    {
        Assert.Equal(KvCacheType.BF16, KvCacheTypes.Parse("bf16", "kv_cache"));
        var error = Assert.Throws<UserError>(() => KvCacheTypes.Parse("q8", "kv_cache"));
        Assert.Contains("'q8'", error.Message);
        Assert.Contains("f32, bf16, f16", error.Message);
        Assert.Equal("kv_cache", error.Field);
    }

    [Fact]
    public void TraceCli_KvCacheOption_RunsTheModelWithThatCache()
    {
        using var tmp = new TempDir();
        string folder = TinyModels.Write(tmp, TinyModels.Qwen2);
        int[] ids = [1, 4, 9, 16, 25, 36];
        float[] Traced(string type)
        {
            string output = tmp.File($"{type}.safetensors");
            var r = CliRunner.Run("trace", folder, "--token-ids", string.Join(',', ids), "--hooks", "logits", "--kv-cache", type, "--out", output);
            Assert.Equal(0, r.ExitCode);
            using var file = SafetensorsFile.Open(output);
            Assert.Equal(type, file.Metadata["kv_cache"]);
            return file.ReadSingles(file.Get("logits"));
        }
        using var model = Transformer.Load(folder);
        model.KvCache = KvCacheType.BF16;
        var capture = new ActivationCapture(model.Config, ["logits"]);
        model.Forward(model.NewState(), ids, capture);
        float[] bf16 = Traced("bf16");
        Assert.Equal(capture["logits"].Data, bf16);
        Assert.NotEqual(Traced("f32"), bf16);

        var bad = CliRunner.Run("trace", folder, "--token-ids", "1", "--hooks", "logits", "--kv-cache", "q4", "--out", tmp.File("x.safetensors"));
        Assert.NotEqual(0, bad.ExitCode);
        Assert.Contains("--kv-cache must be", bad.Stderr);
    }
}
