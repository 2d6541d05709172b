using System.Buffers;
using System.Runtime.InteropServices;

namespace TruthProbe.Model;

/// <summary>
/// A q or k matrix stored for interleaved RoPE (llama2.c, GGUF <c>llama</c>) as a half-split copy, read head by head
/// with file reads. Going through the mapping instead left the originals resident beside the copy: mapped pages,
/// once touched, count in the process's memory until the mapping goes (a 7B Q8_0 llama's q and k are 1.1 GB of its
/// 7.2).
/// </summary>
internal static unsafe class HalfSplitCopy
{
    /// <param name="read">Fills the span with the matrix's bytes from the byte offset given, by file reads.</param>
    public static WeightMatrix Read(int rows, int cols, WeightDType dtype, int heads, int headDim, SpanAction<byte, long> read)
    {
        if (rows != heads * headDim) throw new ArgumentException($"{rows} rows are not {heads} heads of {headDim}");
        int rowBytes = checked((int)WeightMatrix.RowBytesFor(dtype, cols)), headBytes = checked(headDim * rowBytes);
        byte[] bytes = GC.AllocateUninitializedArray<byte>(checked(rows * rowBytes), pinned: true);
        byte[] head = GC.AllocateUninitializedArray<byte>(headBytes);
        for (int h = 0; h < heads; h++)
        {
            read(head, (long)h * headBytes);
            RopeLayout.InterleavedToHalfSplit(head, bytes.AsSpan(h * headBytes, headBytes), 1, headDim, rowBytes);
        }
        return new WeightMatrix(rows, cols, dtype, (byte*)Marshal.UnsafeAddrOfPinnedArrayElement(bytes, 0), bytes);
    }
}
