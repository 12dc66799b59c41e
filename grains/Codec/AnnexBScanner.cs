namespace Blankend.Orleans.Grains.Codec;

/// <summary>
/// Watches an Annex-B elementary stream as it passes (chunks split anywhere, start codes split across chunks
/// included): whether any start code (<c>00 00 01</c>) has been seen, and where parameter sets begin (H.264 SPS;
/// HEVC VPS), the points a replacement decoder can start from.
/// </summary>
internal sealed class AnnexBScanner(string codec)
{
    private readonly bool _hevc = codec == Blankend.Orleans.Codec.VideoCodecs.Hevc;
    private int _carriedZeros; // zero bytes at the end of the previous chunk (at most 2 matter)
    private bool _headerPending; // the previous chunk ended right after a start code

    public bool SawStartCode { get; private set; }

    public long StartCodes { get; private set; }

    /// <summary>Scans the next chunk. Returns the index in <paramref name="data"/> of the NAL header byte of the
    /// last parameter set that begins in it, or -1.</summary>
    public int Scan(ReadOnlySpan<byte> data)
    {
        var mark = -1;
        if (data.IsEmpty)
            return mark;
        if (_headerPending)
        {
            _headerPending = false;
            if (IsParameterSet(data[0]))
                mark = 0;
        }

        var from = 0;
        while (true)
        {
            var rel = data[from..].IndexOf((byte)0x01);
            if (rel < 0)
                break;
            var j = from + rel;
            if (ZerosBefore(data, j) >= 2)
            {
                SawStartCode = true;
                StartCodes++;
                if (j + 1 < data.Length)
                {
                    if (IsParameterSet(data[j + 1]))
                        mark = j + 1;
                }
                else
                {
                    _headerPending = true;
                }
            }
            from = j + 1;
            if (from >= data.Length)
                break;
        }

        // Trailing zeros carry over to the next chunk (a start code may straddle the boundary).
        var trailing = 0;
        for (var k = data.Length - 1; k >= 0 && trailing < 2 && data[k] == 0; k--)
            trailing++;
        _carriedZeros = trailing == data.Length ? Math.Min(2, _carriedZeros + trailing) : trailing;
        return mark;
    }

    private int ZerosBefore(ReadOnlySpan<byte> data, int j)
    {
        var zeros = 0;
        for (var k = j - 1; k >= 0 && zeros < 2; k--)
        {
            if (data[k] != 0)
                return zeros;
            zeros++;
        }
        return zeros + (zeros == j ? _carriedZeros : 0);
    }

    private bool IsParameterSet(byte header) =>
        _hevc
            ? ((header >> 1) & 0x3F) == 32 // VPS
            : (header & 0x1F) == 7; // SPS
}

/// <summary>
/// The stream since its last parameter set, so that a decoder started mid-stream (CPU after a GPU failure) can
/// begin from a point it can decode instead of erroring until the next keyframe. Bounded: past
/// <see cref="MaxBytes"/> it gives up until the next parameter set.
/// </summary>
internal sealed class ReplayBuffer(int maxBytes)
{
    private static readonly byte[] StartCode = [0, 0, 0, 1];
    private readonly List<byte[]> _parts = [];
    private long _bytes;

    public int MaxBytes { get; } = maxBytes;

    /// <summary>True when the buffer starts at a parameter set and holds everything since.</summary>
    public bool Valid { get; private set; }

    public long Bytes => _bytes;

    /// <param name="chunk">The chunk as fed to the decoder.</param>
    /// <param name="mark">Index of a parameter set's NAL header in <paramref name="chunk"/> (from
    /// <see cref="AnnexBScanner.Scan"/>), or -1.</param>
    /// <returns>True when the buffer restarted at a new parameter set.</returns>
    public bool Append(ReadOnlySpan<byte> chunk, int mark)
    {
        if (mark >= 0)
        {
            _parts.Clear();
            _parts.Add(StartCode);
            _parts.Add(chunk[mark..].ToArray());
            _bytes = StartCode.Length + chunk.Length - mark;
            Valid = true;
            return true;
        }
        if (!Valid)
            return false;
        if (_bytes + chunk.Length > MaxBytes)
        {
            _parts.Clear();
            _bytes = 0;
            Valid = false;
            return false;
        }
        _parts.Add(chunk.ToArray());
        _bytes += chunk.Length;
        return false;
    }

    public IReadOnlyList<byte[]> Parts => _parts;
}
