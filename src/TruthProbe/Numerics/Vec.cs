using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace TruthProbe.Numerics;

/// <summary>
/// The vector operations the lab's kernels use. Each kernel is written once, generic over TVec : IVec&lt;TVec&gt;;
/// <see cref="Lanes.Pick"/> runs the instantiation for the width the hardware accelerates (.NET's own generic
/// vector interface is internal, so <see cref="Vec{TRaw}"/> adapts the three BCL vector types).
/// </summary>
internal unsafe interface IVec<TSelf> where TSelf : unmanaged, IVec<TSelf>
{
    /// <summary>Floats per vector.</summary>
    static abstract int Count { get; }
    static abstract TSelf Load(float* p);
    static abstract void Store(TSelf v, float* p);
    /// <summary>The first <paramref name="count"/> (at most <see cref="Count"/>) floats at p, zeros after; reads nothing past them.</summary>
    static abstract TSelf LoadPartial(float* p, int count);
    static abstract void StorePartial(TSelf v, float* p, int count);
    static abstract TSelf Create(float x);
    /// <summary>a·b + c, rounded once.</summary>
    static abstract TSelf Fma(TSelf a, TSelf b, TSelf c);
    static abstract TSelf Exp(TSelf x);
    static abstract TSelf Sqrt(TSelf x);
    static abstract TSelf Max(TSelf a, TSelf b);
    /// <summary>The sum of the lanes, in the order of the hardware's horizontal add for that width.</summary>
    static abstract float Sum(TSelf v);
    static abstract float MaxAcross(TSelf v);
    /// <summary>Lanes below <paramref name="count"/> from <paramref name="below"/>, the others from <paramref name="rest"/>.</summary>
    static abstract TSelf FirstLanes(int count, TSelf below, TSelf rest);
    /// <summary>
    /// squares + g² with g widened to double (the gradient norm): the double lanes ride in a TSelf of the same
    /// size, the high half of g is added before the low half, lane by lane.
    /// </summary>
    static abstract TSelf AddSquaresInDouble(TSelf squares, TSelf g);
    /// <summary>The sum of the double lanes that <see cref="AddSquaresInDouble"/> keeps.</summary>
    static abstract double SumDoubles(TSelf v);
    /// <summary>x in every double lane (Count / 2 of them): the same bits hold float64 kernels (Cholesky).</summary>
    static abstract TSelf CreateDouble(double x);
    /// <summary>a·b + c on the double lanes, rounded once.</summary>
    static abstract TSelf FmaDouble(TSelf a, TSelf b, TSelf c);
    static abstract TSelf operator +(TSelf a, TSelf b);
    static abstract TSelf operator -(TSelf a, TSelf b);
    static abstract TSelf operator *(TSelf a, TSelf b);
    static abstract TSelf operator /(TSelf a, TSelf b);
    static abstract TSelf operator -(TSelf a);
}

/// <summary>
/// <see cref="IVec{TSelf}"/> over TRaw, one of Vector512&lt;float&gt;, Vector256&lt;float&gt;, Vector128&lt;float&gt;.
/// Each operation tests typeof(TRaw), which the JIT resolves when it compiles a kernel for one width: no branch
/// is left, and the wrapper lives in a register like the vector itself.
/// </summary>
internal readonly unsafe struct Vec<TRaw> : IVec<Vec<TRaw>> where TRaw : unmanaged
{
    // Kept small on purpose: the JIT inlines each operation into the kernels, and its budget counts the IL of all
    // three branches (sizeof tests and bit casts cost the least).
    private readonly TRaw _raw;

    private static Vec<TRaw> Of<TFrom>(TFrom v) where TFrom : unmanaged => Unsafe.BitCast<TFrom, Vec<TRaw>>(v);

    public static int Count { [MethodImpl(MethodImplOptions.AggressiveInlining)] get => sizeof(TRaw) / sizeof(float); }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec<TRaw> Load(float* p) => Unsafe.ReadUnaligned<Vec<TRaw>>(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vec<TRaw> v, float* p) => Unsafe.WriteUnaligned(p, v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec<TRaw> LoadPartial(float* p, int count) => count == Count ? Load(p) : LoadFew(p, count);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StorePartial(Vec<TRaw> v, float* p, int count)
    {
        if (count == Count) Store(v, p);
        else StoreFew(v, p, count);
    }

    // Out of line: their lanes are addressed in memory, which would keep a caller's vectors out of registers.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Vec<TRaw> LoadFew(float* p, int count)
    {
        Vec<TRaw> v = default;
        for (int i = 0; i < count; i++) ((float*)&v)[i] = p[i];
        return v;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void StoreFew(Vec<TRaw> v, float* p, int count)
    {
        for (int i = 0; i < count; i++) p[i] = ((float*)&v)[i];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec<TRaw> Create(float x) => sizeof(TRaw) == 64 ? Of(Vector512.Create(x)) : sizeof(TRaw) == 32 ? Of(Vector256.Create(x)) : Of(Vector128.Create(x));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec<TRaw> Fma(Vec<TRaw> a, Vec<TRaw> b, Vec<TRaw> c) =>
        sizeof(TRaw) == 64 ? Of(Vector512.FusedMultiplyAdd(a.W, b.W, c.W))
        : sizeof(TRaw) == 32 ? Of(Vector256.FusedMultiplyAdd(a.M, b.M, c.M)) : Of(Vector128.FusedMultiplyAdd(a.N, b.N, c.N));

    /// <summary>The vector as each width (only the one of TRaw's size is ever taken).</summary>
    private Vector512<float> W { [MethodImpl(MethodImplOptions.AggressiveInlining)] get => Unsafe.BitCast<TRaw, Vector512<float>>(_raw); }
    private Vector256<float> M { [MethodImpl(MethodImplOptions.AggressiveInlining)] get => Unsafe.BitCast<TRaw, Vector256<float>>(_raw); }
    private Vector128<float> N { [MethodImpl(MethodImplOptions.AggressiveInlining)] get => Unsafe.BitCast<TRaw, Vector128<float>>(_raw); }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec<TRaw> Exp(Vec<TRaw> x) => sizeof(TRaw) == 64 ? Of(Vector512.Exp(x.W)) : sizeof(TRaw) == 32 ? Of(Vector256.Exp(x.M)) : Of(Vector128.Exp(x.N));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec<TRaw> Max(Vec<TRaw> a, Vec<TRaw> b) =>
        sizeof(TRaw) == 64 ? Of(Vector512.Max(a.W, b.W)) : sizeof(TRaw) == 32 ? Of(Vector256.Max(a.M, b.M)) : Of(Vector128.Max(a.N, b.N));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec<TRaw> Sqrt(Vec<TRaw> x) => sizeof(TRaw) == 64 ? Of(Vector512.Sqrt(x.W)) : sizeof(TRaw) == 32 ? Of(Vector256.Sqrt(x.M)) : Of(Vector128.Sqrt(x.N));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vec<TRaw> v) => sizeof(TRaw) == 64 ? Vector512.Sum(v.W) : sizeof(TRaw) == 32 ? Vector256.Sum(v.M) : Vector128.Sum(v.N);

    /// <summary>Halves folded down to 4 lanes, then those 4 in scalar.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxAcross(Vec<TRaw> v)
    {
        var quarter = sizeof(TRaw) == 64 ? Fold(Fold(v.W)) : sizeof(TRaw) == 32 ? Fold(v.M) : v.N;
        return MathF.Max(MathF.Max(quarter[0], quarter[1]), MathF.Max(quarter[2], quarter[3]));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Fold(Vector512<float> v) => Vector256.Max(v.GetLower(), v.GetUpper());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Fold(Vector256<float> v) => Vector128.Max(v.GetLower(), v.GetUpper());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec<TRaw> FirstLanes(int count, Vec<TRaw> below, Vec<TRaw> rest) =>
        sizeof(TRaw) == 64 ? Of(Vector512.ConditionalSelect(Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(count)).AsSingle(), below.W, rest.W))
        : sizeof(TRaw) == 32 ? Of(Vector256.ConditionalSelect(Vector256.LessThan(Vector256<int>.Indices, Vector256.Create(count)).AsSingle(), below.M, rest.M))
        : Of(Vector128.ConditionalSelect(Vector128.LessThan(Vector128<int>.Indices, Vector128.Create(count)).AsSingle(), below.N, rest.N));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec<TRaw> AddSquaresInDouble(Vec<TRaw> squares, Vec<TRaw> g)
    {
        if (sizeof(TRaw) == 64)
        {
            var (low, high) = Vector512.Widen(g.W);
            var sum = squares.W.AsDouble();
            return Of(Vector512.FusedMultiplyAdd(low, low, Vector512.FusedMultiplyAdd(high, high, sum)).AsSingle());
        }
        if (sizeof(TRaw) == 32)
        {
            var (low, high) = Vector256.Widen(g.M);
            return Of(Vector256.FusedMultiplyAdd(low, low, Vector256.FusedMultiplyAdd(high, high, squares.M.AsDouble())).AsSingle());
        }
        var (low128, high128) = Vector128.Widen(g.N);
        return Of(Vector128.FusedMultiplyAdd(low128, low128, Vector128.FusedMultiplyAdd(high128, high128, squares.N.AsDouble())).AsSingle());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double SumDoubles(Vec<TRaw> v) =>
        sizeof(TRaw) == 64 ? Vector512.Sum(v.W.AsDouble()) : sizeof(TRaw) == 32 ? Vector256.Sum(v.M.AsDouble()) : Vector128.Sum(v.N.AsDouble());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec<TRaw> CreateDouble(double x) => sizeof(TRaw) == 64 ? Of(Vector512.Create(x)) : sizeof(TRaw) == 32 ? Of(Vector256.Create(x)) : Of(Vector128.Create(x));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec<TRaw> FmaDouble(Vec<TRaw> a, Vec<TRaw> b, Vec<TRaw> c) =>
        sizeof(TRaw) == 64 ? Of(Vector512.FusedMultiplyAdd(a.W.AsDouble(), b.W.AsDouble(), c.W.AsDouble()))
        : sizeof(TRaw) == 32 ? Of(Vector256.FusedMultiplyAdd(a.M.AsDouble(), b.M.AsDouble(), c.M.AsDouble()))
        : Of(Vector128.FusedMultiplyAdd(a.N.AsDouble(), b.N.AsDouble(), c.N.AsDouble()));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec<TRaw> operator +(Vec<TRaw> a, Vec<TRaw> b) => sizeof(TRaw) == 64 ? Of(a.W + b.W) : sizeof(TRaw) == 32 ? Of(a.M + b.M) : Of(a.N + b.N);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec<TRaw> operator -(Vec<TRaw> a, Vec<TRaw> b) => sizeof(TRaw) == 64 ? Of(a.W - b.W) : sizeof(TRaw) == 32 ? Of(a.M - b.M) : Of(a.N - b.N);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec<TRaw> operator *(Vec<TRaw> a, Vec<TRaw> b) => sizeof(TRaw) == 64 ? Of(a.W * b.W) : sizeof(TRaw) == 32 ? Of(a.M * b.M) : Of(a.N * b.N);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec<TRaw> operator /(Vec<TRaw> a, Vec<TRaw> b) => sizeof(TRaw) == 64 ? Of(a.W / b.W) : sizeof(TRaw) == 32 ? Of(a.M / b.M) : Of(a.N / b.N);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec<TRaw> operator -(Vec<TRaw> a) => sizeof(TRaw) == 64 ? Of(-a.W) : sizeof(TRaw) == 32 ? Of(-a.M) : Of(-a.N);
}

/// <summary>Which width the lab's kernels run on: Vector512 where AVX-512 runs it, else Vector256, else Vector128.</summary>
internal static unsafe class Lanes
{
    /// <summary>The instantiation of a kernel for <see cref="SimdWidth.Current"/> (<see cref="SimdPath.Generic"/> means Vector128):
    /// Vec of Vector512, Vector256 or Vector128.</summary>
    public static delegate*<void*, int, int, void> Pick(delegate*<void*, int, int, void> wide, delegate*<void*, int, int, void> middle, delegate*<void*, int, int, void> narrow) =>
        SimdWidth.Current switch { SimdPath.Vector512 => wide, SimdPath.Vector256 => middle, _ => narrow };
}
