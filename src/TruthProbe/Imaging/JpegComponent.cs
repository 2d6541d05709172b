namespace TruthProbe.Imaging;

/// <summary>One colour component of a JPEG frame: its sampling, geometry, and all its DCT coefficients.</summary>
internal sealed class JpegComponent
{
    public required int Id { get; init; }
    public required int H { get; init; }
    public required int V { get; init; }
    public required int QuantTableIndex { get; init; }

    /// <summary>Samples per row and rows before padding (libjpeg's downsampled_width/height).</summary>
    public int Width, Height;
    /// <summary>Blocks a single-component scan covers.</summary>
    public int WidthInBlocks, HeightInBlocks;
    /// <summary>Blocks in storage: whole MCUs, as interleaved scans fill them.</summary>
    public int BlocksPerLine, BlockRows;
    /// <summary>64 coefficients per block in natural order, blocks row-major.</summary>
    public short[] Coefficients = [];
    /// <summary>The quantisation table in natural order, copied when the component's first scan starts (as libjpeg latches it).</summary>
    public int[]? Quant;
    /// <summary>Progressive only: the successive-approximation bit position each of the 64 coefficients has reached, -1 before any scan.</summary>
    public readonly int[] CoefficientBits = Enumerable.Repeat(-1, 64).ToArray();
    public bool Scanned;

    public int DcPredictor;
    public JpegHuffmanTable? DcTable, AcTable;

    public Span<short> Block(int row, int col) => Coefficients.AsSpan((row * BlocksPerLine + col) * 64, 64);
}
