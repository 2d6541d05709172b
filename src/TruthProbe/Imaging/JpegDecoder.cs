using System.Buffers.Binary;
using TruthProbe.Common;

namespace TruthProbe.Imaging;

/// <summary>
/// Decodes baseline and progressive Huffman JPEGs (8-bit, grey, three or four components) to the pixels Pillow 9.4
/// with libjpeg-turbo gives for <c>Image.open(f).convert("RGB")</c>: libjpeg's integer IDCT, its "fancy"
/// triangular chroma upsampling and its fixed-point YCbCr->RGB. Anything malformed, truncated or outside
/// that scope is a <see cref="UserError"/> naming the file.
/// </summary>
public static class JpegDecoder
{
    /// <summary>
    /// Largest image accepted: 2^27 pixels (134 MP, e.g. 11585x11585). Beyond Pillow's decompression-bomb
    /// warning (89 MP), below its error (179 MP); decoding one holds every coefficient, so it needs about
    /// 1 GB at 4:2:0 and 1.6 GB at 4:4:4.
    /// </summary>
    public const long MaxPixels = 1L << 27;

    public static RgbImage Decode(ReadOnlySpan<byte> data, string fileName)
    {
        var reader = new JpegReader(data, fileName);
        return reader.Read();
    }
}

/// <summary>The marker parser and entropy decoder; one instance per decode, state lives in its fields.</summary>
internal ref struct JpegReader
{
    private static readonly byte[] ZigZag =
    [
        0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21,
        28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61,
        54, 47, 55, 62, 63,
        // A corrupt run can push the index past 63; libjpeg's table has these 16 extra entries so that such
        // coefficients land on position 63 instead of outside the block, and so must ours to match it.
        63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
    ];

    private readonly ReadOnlySpan<byte> _data;
    private readonly string _file;
    private int _pos;

    private readonly JpegHuffmanTable?[] _dcTables = new JpegHuffmanTable?[4];
    private readonly JpegHuffmanTable?[] _acTables = new JpegHuffmanTable?[4];
    private readonly int[]?[] _quantTables = new int[]?[4];
    private JpegComponent[] _components = [];
    private int _width, _height, _maxH, _maxV, _mcusX, _mcusY;
    private bool _progressive;
    private int _restartInterval;
    private bool _sawJfif, _sawAdobe;
    private int _adobeTransform;

    // Entropy-coded data: bits MSB-first in _bits, _bitCount of them valid; past a marker or the end of
    // the data zeros are fed in (as libjpeg does) and counted in _padBits, so that decoding which reaches
    // into them is detected as truncation after the MCU.
    private ulong _bits;
    private int _bitCount, _padBits;
    private bool _hitMarker;
    private int _eobRun;

    public JpegReader(ReadOnlySpan<byte> data, string fileName)
    {
        _data = data;
        _file = fileName;
    }

    private readonly UserError Error(string what) => new($"{_file}: {what}");

    public RgbImage Read()
    {
        if (_data.Length < 2 || _data[0] != 0xFF || _data[1] != 0xD8)
            throw Error("not a JPEG file (it does not start with the SOI marker FF D8)");
        _pos = 2;
        bool sawFrame = false, sawScan = false;
        while (true)
        {
            int marker = NextMarker();
            if (marker < 0)
            {
                // A baseline file whose scans are all complete decodes in Pillow even without EOI; a
                // progressive one does not (libjpeg waits for EOI before it outputs anything).
                if (!sawScan || _progressive || _components.Any(c => !c.Scanned))
                    throw Error(sawFrame ? "image file is truncated (the data ends before the last scan and the EOI marker)"
                        : "image file is truncated (the data ends before any frame header)");
                break;
            }
            if (marker == 0xD9) break;
            switch (marker)
            {
                case 0xC0 or 0xC1 or 0xC2:
                    if (sawFrame) throw Error("second frame header (SOF) in one image");
                    ReadFrame(Segment("SOF"), progressive: marker == 0xC2);
                    sawFrame = true;
                    break;
                case 0xC3 or (>= 0xC5 and <= 0xC7) or (>= 0xC9 and <= 0xCB) or (>= 0xCD and <= 0xCF):
                    throw Error($"unsupported JPEG process (SOF{marker - 0xC0}: lossless, hierarchical or arithmetic-coded); only baseline and progressive Huffman JPEGs are supported");
                case 0xC4: ReadHuffmanTables(Segment("DHT")); break;
                case 0xCC: throw Error("arithmetic-coded JPEG (DAC marker) is not supported");
                case 0xDB: ReadQuantTables(Segment("DQT")); break;
                case 0xDD:
                {
                    var s = Segment("DRI");
                    if (s.Length != 2) throw Error($"DRI segment has length {s.Length + 2}, expected 4");
                    _restartInterval = BinaryPrimitives.ReadUInt16BigEndian(s);
                    break;
                }
                case 0xDA:
                    if (!sawFrame) throw Error("scan (SOS) before the frame header (SOF)");
                    if (!sawScan && !_progressive)
                        for (int i = 0; i < 2; i++)
                        {
                            _dcTables[i] ??= JpegHuffmanTable.Standard(isDc: true, i);
                            _acTables[i] ??= JpegHuffmanTable.Standard(isDc: false, i);
                        }
                    ReadScan(Segment("SOS"));
                    sawScan = true;
                    break;
                case 0xE0: ReadApp0(Segment("APP0")); break;
                case 0xEE: ReadApp14(Segment("APP14")); break;
                case 0xDC: throw Error("DNL marker (height defined after the first scan) is not supported");
                case >= 0xD0 and <= 0xD7: break; // stray restart marker between segments: libjpeg ignores it too
                case 0x01: break;                 // TEM has no length
                default: Segment($"marker FF {marker:X2}"); break;
            }
        }
        if (!sawScan) throw Error("no image data (no SOS scan before EOI)");
        return JpegOutput.ToRgb(_components, _width, _height, _maxH, _maxV, ColorTransform(), _progressive);
    }

    /// <summary>libjpeg's guess of the colour space (jdapimin.c default_decompress_parms).</summary>
    private readonly JpegColorTransform ColorTransform()
    {
        if (_components.Length == 1) return JpegColorTransform.Grey;
        // Four components: Adobe's transform 0 is CMYK, any other YCCK; without the marker, CMYK.
        if (_components.Length == 4) return _sawAdobe && _adobeTransform != 0 ? JpegColorTransform.Ycck : JpegColorTransform.Cmyk;
        if (_sawJfif) return JpegColorTransform.YCbCr;
        if (_sawAdobe) return _adobeTransform == 0 ? JpegColorTransform.Rgb : JpegColorTransform.YCbCr;
        return _components[0].Id == 'R' && _components[1].Id == 'G' && _components[2].Id == 'B'
            ? JpegColorTransform.Rgb : JpegColorTransform.YCbCr;
    }

    /// <summary>The next marker code at or after the current position, skipping fill bytes; -1 at the end of the data.</summary>
    private int NextMarker()
    {
        while (true)
        {
            // Garbage between segments is skipped, as libjpeg does (with a warning).
            while (_pos < _data.Length && _data[_pos] != 0xFF) _pos++;
            while (_pos < _data.Length && _data[_pos] == 0xFF) _pos++;
            if (_pos >= _data.Length) return -1;
            int code = _data[_pos++];
            if (code != 0) return code;
        }
    }

    /// <summary>The payload of the segment starting at the current position (after its marker), length-checked.</summary>
    private ReadOnlySpan<byte> Segment(string name)
    {
        if (_pos + 2 > _data.Length) throw Error($"image file is truncated (inside the {name} segment's length)");
        int length = BinaryPrimitives.ReadUInt16BigEndian(_data[_pos..]);
        if (length < 2) throw Error($"{name} segment has length {length}, below the minimum of 2");
        if (_pos + length > _data.Length)
            throw Error($"image file is truncated ({name} segment at byte {_pos - 2} says {length} bytes, only {_data.Length - _pos} remain)");
        var payload = _data.Slice(_pos + 2, length - 2);
        _pos += length;
        return payload;
    }

    private void ReadApp0(ReadOnlySpan<byte> s)
    {
        if (s.Length >= 14 && s[..5].SequenceEqual("JFIF\0"u8)) _sawJfif = true;
    }

    private void ReadApp14(ReadOnlySpan<byte> s)
    {
        if (s.Length >= 12 && s[..5].SequenceEqual("Adobe"u8))
        {
            _sawAdobe = true;
            _adobeTransform = s[11];
        }
    }

    private void ReadQuantTables(ReadOnlySpan<byte> s)
    {
        while (s.Length > 0)
        {
            int precision = s[0] >> 4, index = s[0] & 15;
            if (index > 3) throw Error($"DQT defines table {index}; tables are numbered 0-3");
            if (precision > 1) throw Error($"DQT table {index} has precision code {precision}; expected 0 (8-bit) or 1 (16-bit)");
            int size = 1 + 64 * (precision + 1);
            if (s.Length < size) throw Error($"DQT segment is shorter than its table {index}");
            var table = new int[64];
            for (int k = 0; k < 64; k++)
                table[ZigZag[k]] = precision == 0 ? s[1 + k] : BinaryPrimitives.ReadUInt16BigEndian(s[(1 + 2 * k)..]);
            _quantTables[index] = table;
            s = s[size..];
        }
    }

    private void ReadHuffmanTables(ReadOnlySpan<byte> s)
    {
        while (s.Length > 0)
        {
            if (s.Length < 17) throw Error("DHT segment is shorter than its 16 code-length counts");
            int tableClass = s[0] >> 4, index = s[0] & 15;
            if (tableClass > 1 || index > 3) throw Error($"DHT table class {tableClass} index {index}; expected class 0 (DC) or 1 (AC) and index 0-3");
            var counts = s.Slice(1, 16);
            int total = 0;
            foreach (byte c in counts) total += c;
            if (total > 256) throw Error($"DHT table {index} declares {total} symbols; at most 256 exist");
            if (s.Length < 17 + total) throw Error($"DHT segment is shorter than its table {index}'s {total} symbols");
            var table = JpegHuffmanTable.Build(counts, s.Slice(17, total), tableClass == 0, out string? problem);
            if (problem != null) throw Error($"bad Huffman table ({(tableClass == 0 ? "DC" : "AC")} {index}): {problem}");
            (tableClass == 0 ? _dcTables : _acTables)[index] = table;
            s = s[(17 + total)..];
        }
    }

    private void ReadFrame(ReadOnlySpan<byte> s, bool progressive)
    {
        if (s.Length < 6) throw Error("SOF segment is shorter than its fixed fields");
        if (s[0] != 8) throw Error($"{s[0]}-bit samples; only 8-bit JPEGs are supported");
        _height = BinaryPrimitives.ReadUInt16BigEndian(s[1..]);
        _width = BinaryPrimitives.ReadUInt16BigEndian(s[3..]);
        int n = s[5];
        if (_width == 0 || _height == 0) throw Error($"image size {_width}x{_height}: width and height must be positive (a height given later by DNL is not supported)");
        if ((long)_width * _height > JpegDecoder.MaxPixels)
            throw Error($"image size {_width}x{_height} is {(long)_width * _height} pixels, above the limit of {JpegDecoder.MaxPixels}");
        if (n != 1 && n != 3 && n != 4) throw Error($"{n} colour components; only 1 (grey), 3 (YCbCr or RGB) and 4 (CMYK or YCCK) are supported");
        if (s.Length != 6 + 3 * n) throw Error($"SOF segment has {s.Length + 2} bytes, expected {8 + 3 * n} for {n} components");
        _progressive = progressive;
        _components = new JpegComponent[n];
        for (int i = 0; i < n; i++)
        {
            var c = s.Slice(6 + 3 * i, 3);
            int h = c[1] >> 4, v = c[1] & 15;
            if (h < 1 || h > 4 || v < 1 || v > 4) throw Error($"component {c[0]} has sampling factors {h}x{v}; each must be 1-4");
            if (c[2] > 3) throw Error($"component {c[0]} uses quantisation table {c[2]}; tables are numbered 0-3");
            for (int j = 0; j < i; j++)
                if (_components[j].Id == c[0]) throw Error($"component id {c[0]} appears twice in the frame header");
            _components[i] = new JpegComponent { Id = c[0], H = h, V = v, QuantTableIndex = c[2] };
        }
        _maxH = _components.Max(c => c.H);
        _maxV = _components.Max(c => c.V);
        _mcusX = (_width + 8 * _maxH - 1) / (8 * _maxH);
        _mcusY = (_height + 8 * _maxV - 1) / (8 * _maxV);
        long blocks = 0;
        foreach (var c in _components)
        {
            if (_maxH % c.H != 0 || _maxV % c.V != 0)
                throw Error($"component {c.Id} has sampling {c.H}x{c.V}, not an integer fraction of the largest ({_maxH}x{_maxV})");
            c.Width = (int)(((long)_width * c.H + _maxH - 1) / _maxH);
            c.Height = (int)(((long)_height * c.V + _maxV - 1) / _maxV);
            c.WidthInBlocks = (c.Width + 7) / 8;
            c.HeightInBlocks = (c.Height + 7) / 8;
            c.BlocksPerLine = _mcusX * c.H;
            c.BlockRows = _mcusY * c.V;
            blocks += (long)c.WidthInBlocks * c.HeightInBlocks;
        }
        if (n > 1 && _components.Sum(c => c.H * c.V) > 10)
            throw Error($"sampling factors give {_components.Sum(c => c.H * c.V)} blocks per MCU; JPEG allows at most 10");
        // Every block inside the image costs at least one bit of entropy-coded data in its first scan, so a
        // header that promises more blocks than the file has bits is truncated or crafted: refuse before allocating.
        if (blocks > 8L * _data.Length)
            throw Error($"image file is truncated (a {_width}x{_height} image needs more data than the file's {_data.Length} bytes)");
        foreach (var c in _components) c.Coefficients = new short[checked(c.BlocksPerLine * c.BlockRows * 64)];
    }

    private void ReadScan(ReadOnlySpan<byte> s)
    {
        if (s.Length < 1) throw Error("SOS segment is empty");
        int n = s[0];
        if (n < 1 || n > 4 || s.Length != 4 + 2 * n) throw Error($"SOS segment lists {n} components in {s.Length + 2} bytes; expected 1-4 components and {6 + 2 * n} bytes");
        int ss = s[1 + 2 * n], se = s[2 + 2 * n], ah = s[3 + 2 * n] >> 4, al = s[3 + 2 * n] & 15;
        if (_progressive)
        {
            if (ss == 0 ? se != 0 : ss > se || se > 63 || n != 1)
                throw Error($"bad progressive scan: spectral range {ss}-{se} over {n} components (a DC scan is 0-0, an AC scan covers one component within 1-63)");
            if ((ah != 0 && al != ah - 1) || al > 13)
                throw Error($"bad progressive scan: successive approximation Ah={ah} Al={al}");
        }
        bool needDc = !_progressive || ss == 0 && ah == 0;
        bool needAc = !_progressive || ss > 0;
        var comps = new JpegComponent[n];
        for (int i = 0; i < n; i++)
        {
            int id = s[1 + 2 * i], dcIndex = s[2 + 2 * i] >> 4, acIndex = s[2 + 2 * i] & 15;
            var c = _components.FirstOrDefault(x => x.Id == id)
                ?? throw Error($"scan names component {id}, which the frame header does not define (it has {string.Join(", ", _components.Select(x => x.Id))})");
            if (Array.IndexOf(comps, c) >= 0) throw Error($"scan names component {id} twice");
            if (dcIndex > 3 || acIndex > 3) throw Error($"scan gives component {id} Huffman tables {dcIndex}/{acIndex}; tables are numbered 0-3");
            c.DcTable = _dcTables[dcIndex];
            c.AcTable = _acTables[acIndex];
            if (needDc && c.DcTable == null) throw Error($"scan uses DC Huffman table {dcIndex} for component {id}, but no DHT before it defines it");
            if (needAc && c.AcTable == null) throw Error($"scan uses AC Huffman table {acIndex} for component {id}, but no DHT before it defines it");
            c.Quant ??= (int[]?)_quantTables[c.QuantTableIndex]?.Clone()
                ?? throw Error($"component {id} uses quantisation table {c.QuantTableIndex}, but no DQT before its first scan defines it");
            if (_progressive)
                for (int k = ss; k <= se; k++) c.CoefficientBits[k] = al;
            c.Scanned = true;
            comps[i] = c;
        }
        if (n > 1 && comps.Sum(c => c.H * c.V) > 10) throw Error("scan has more than 10 blocks per MCU");
        DecodeScan(comps, _progressive ? ss : 0, _progressive ? se : 63, _progressive ? ah : 0, _progressive ? al : 0);
    }

    // ---- entropy-coded data ----

    private enum ScanKind { Sequential, DcFirst, DcRefine, AcFirst, AcRefine }

    private void DecodeScan(JpegComponent[] comps, int ss, int se, int ah, int al)
    {
        var kind = !_progressive ? ScanKind.Sequential
            : ss == 0 ? (ah == 0 ? ScanKind.DcFirst : ScanKind.DcRefine)
            : ah == 0 ? ScanKind.AcFirst : ScanKind.AcRefine;
        ResetEntropy(comps);
        int mcu = 0;
        if (comps.Length == 1)
        {
            // A single-component scan is not interleaved: its MCU is one block, over the component's own blocks.
            var c = comps[0];
            for (int by = 0; by < c.HeightInBlocks; by++)
                for (int bx = 0; bx < c.WidthInBlocks; bx++)
                {
                    Restart(comps, mcu++);
                    DecodeBlock(kind, c, c.Block(by, bx), ss, se, al);
                    CheckNotTruncated();
                }
        }
        else
        {
            for (int my = 0; my < _mcusY; my++)
                for (int mx = 0; mx < _mcusX; mx++)
                {
                    Restart(comps, mcu++);
                    foreach (var c in comps)
                        for (int v = 0; v < c.V; v++)
                            for (int h = 0; h < c.H; h++)
                                DecodeBlock(kind, c, c.Block(my * c.V + v, mx * c.H + h), ss, se, al);
                    CheckNotTruncated();
                }
        }
        // Whatever was buffered belongs to this scan (bits are never read past a marker).
        _bits = 0;
        _bitCount = _padBits = 0;
        _hitMarker = false;
    }

    private void ResetEntropy(JpegComponent[] comps)
    {
        _bits = 0;
        _bitCount = _padBits = 0;
        _hitMarker = false;
        _eobRun = 0;
        foreach (var c in comps) c.DcPredictor = 0;
    }

    private void Restart(JpegComponent[] comps, int mcu)
    {
        if (_restartInterval == 0 || mcu == 0 || mcu % _restartInterval != 0) return;
        int expected = 0xD0 + (mcu / _restartInterval - 1) % 8;
        int at = _pos;
        while (at < _data.Length && _data[at] != 0xFF) at++;
        while (at + 1 < _data.Length && _data[at + 1] == 0xFF) at++;
        if (at + 1 >= _data.Length)
            throw Error("image file is truncated (the data ends inside a scan, before a restart marker)");
        if (_data[at + 1] != expected)
            throw Error($"expected restart marker RST{expected - 0xD0} at byte {at}, found FF {_data[at + 1]:X2} (corrupt entropy-coded data)");
        _pos = at + 2;
        ResetEntropy(comps);
    }

    private readonly void CheckNotTruncated()
    {
        if (_bitCount >= _padBits) return;
        int marker = _pos + 1 < _data.Length ? _data[_pos + 1] : -1;
        throw Error(marker < 0
            ? "image file is truncated (the data ends inside a scan)"
            : $"corrupt JPEG data: the entropy-coded segment ends early at byte {_pos} (marker FF {marker:X2} inside a scan)");
    }

    private void Fill()
    {
        while (_bitCount <= 56)
        {
            int b = 0;
            bool real = false;
            if (!_hitMarker && _pos < _data.Length)
            {
                b = _data[_pos];
                if (b != 0xFF)
                {
                    _pos++;
                    real = true;
                }
                else
                {
                    int next = _pos + 1;
                    while (next < _data.Length && _data[next] == 0xFF) next++;
                    real = next < _data.Length && _data[next] == 0; // stuffed FF 00 is a data byte FF
                    if (real) _pos = next + 1;
                    else _hitMarker = true;
                }
            }
            if (!real)
            {
                b = 0;
                _padBits += 8;
            }
            _bits |= (ulong)(uint)b << (56 - _bitCount);
            _bitCount += 8;
        }
    }

    private int GetBits(int n)
    {
        if (n == 0) return 0;
        if (_bitCount < n) Fill();
        int v = (int)(_bits >> (64 - n));
        _bits <<= n;
        _bitCount -= n;
        return v;
    }

    private static int Extend(int v, int n) => v < 1 << (n - 1) ? v - (1 << n) + 1 : v;

    private int DecodeHuffman(JpegHuffmanTable t)
    {
        if (_bitCount < 16) Fill();
        int e = t.Fast[(int)(_bits >> (64 - JpegHuffmanTable.FastBits))];
        if (e != 0)
        {
            int length = e >> 8;
            _bits <<= length;
            _bitCount -= length;
            return e & 0xFF;
        }
        for (int length = JpegHuffmanTable.FastBits + 1; length <= 16; length++)
        {
            int code = (int)(_bits >> (64 - length));
            if (code <= t.MaxCode[length])
            {
                _bits <<= length;
                _bitCount -= length;
                return t.Symbols[code + t.ValOffset[length]];
            }
        }
        throw Error($"corrupt JPEG data: invalid Huffman code near byte {_pos}");
    }

    private void DecodeBlock(ScanKind kind, JpegComponent c, Span<short> block, int ss, int se, int al)
    {
        switch (kind)
        {
            case ScanKind.Sequential:
            {
                block.Clear();
                int s = DecodeHuffman(c.DcTable!);
                c.DcPredictor += s == 0 ? 0 : Extend(GetBits(s), s);
                block[0] = (short)c.DcPredictor;
                var ac = c.AcTable!;
                for (int k = 1; k < 64; k++)
                {
                    int rs = DecodeHuffman(ac);
                    int r = rs >> 4;
                    s = rs & 15;
                    if (s != 0)
                    {
                        k += r;
                        block[ZigZag[k]] = (short)Extend(GetBits(s), s);
                    }
                    else if (r == 15) k += 15;
                    else break;
                }
                break;
            }
            case ScanKind.DcFirst:
            {
                int s = DecodeHuffman(c.DcTable!);
                c.DcPredictor += s == 0 ? 0 : Extend(GetBits(s), s);
                block[0] = (short)(c.DcPredictor << al);
                break;
            }
            case ScanKind.DcRefine:
                if (GetBits(1) != 0) block[0] |= (short)(1 << al);
                break;
            case ScanKind.AcFirst:
                DecodeAcFirst(c.AcTable!, block, ss, se, al);
                break;
            case ScanKind.AcRefine:
                DecodeAcRefine(c.AcTable!, block, ss, se, al);
                break;
        }
    }

    private void DecodeAcFirst(JpegHuffmanTable ac, Span<short> block, int ss, int se, int al)
    {
        if (_eobRun > 0)
        {
            _eobRun--;
            return;
        }
        for (int k = ss; k <= se; k++)
        {
            int rs = DecodeHuffman(ac);
            int r = rs >> 4, s = rs & 15;
            if (s != 0)
            {
                k += r;
                block[ZigZag[k]] = (short)(Extend(GetBits(s), s) << al);
            }
            else if (r == 15) k += 15;
            else
            {
                _eobRun = (1 << r) + GetBits(r) - 1;
                break;
            }
        }
    }

    /// <summary>jdphuff.c's refinement: new coefficients of magnitude 1 and correction bits for the ones already nonzero.</summary>
    private void DecodeAcRefine(JpegHuffmanTable ac, Span<short> block, int ss, int se, int al)
    {
        int p1 = 1 << al, m1 = -1 << al;
        int k = ss;
        if (_eobRun == 0)
        {
            for (; k <= se; k++)
            {
                int rs = DecodeHuffman(ac);
                int r = rs >> 4, s = rs & 15;
                if (s != 0)
                {
                    if (s != 1) throw Error($"corrupt JPEG data: refinement scan codes a coefficient of size {s} (must be 1) near byte {_pos}");
                    s = GetBits(1) != 0 ? p1 : m1;
                }
                else if (r != 15)
                {
                    _eobRun = (1 << r) + GetBits(r);
                    break;
                }
                do
                {
                    int z = ZigZag[k];
                    if (block[z] != 0) Refine(ref block[z], p1, m1);
                    else if (--r < 0) break;
                    k++;
                } while (k <= se);
                if (s != 0) block[ZigZag[k]] = (short)s;
            }
        }
        if (_eobRun > 0)
        {
            for (; k <= se; k++)
            {
                int z = ZigZag[k];
                if (block[z] != 0) Refine(ref block[z], p1, m1);
            }
            _eobRun--;
        }
    }

    private void Refine(ref short coefficient, int p1, int m1)
    {
        if (GetBits(1) != 0 && (coefficient & p1) == 0)
            coefficient = (short)(coefficient + (coefficient >= 0 ? p1 : m1));
    }
}
