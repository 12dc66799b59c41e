using System.Buffers;

namespace Blankend.Orleans.Grains.Codec;

/// <summary>
/// Cuts a byte stream of concatenated JPEGs (ffmpeg's <c>image2pipe</c> output) into frames by walking the JPEG
/// markers: SOI, then marker segments skipped by their length (so an APPn/COM payload holding FF D9 does not end
/// a frame), then entropy-coded data after SOS where <c>FF 00</c> (stuffing), <c>FF D0..D7</c> (RST) and fill
/// bytes are data and the first other marker ends the scan; a frame ends at EOI. Progressive JPEGs (several
/// scans) work the same way.
/// <para>
/// Incremental and allocation-free: the splitter keeps how far it has walked into the current frame, so bytes
/// are examined once however the input is cut. The contract with the caller (a <see
/// cref="System.IO.Pipelines.PipeReader"/>
/// loop): after <see cref="TryReadFrame"/> returns false, hand back the SAME remaining bytes (plus whatever arrived)
/// next time, i.e. <c>AdvanceTo(buffer.Start, buffer.End)</c>.
/// </para>
/// </summary>
internal sealed class JpegFrameSplitter(int maxFrameBytes = JpegFrameSplitter.DefaultMaxFrameBytes)
{
    public const int DefaultMaxFrameBytes = 64 * 1024 * 1024;

    private enum Phase : byte
    {
        SeekSoi,
        Marker,
        Entropy,
    }

    private Phase _phase = Phase.SeekSoi;

    // How far into the current frame (which starts at the buffer's start once SOI is found) the walk has come.
    private long _offset;

    /// <summary>Bytes outside any frame (before an SOI, or the rest of a frame found corrupt).</summary>
    public long SkippedBytes { get; private set; }

    /// <summary>Frames abandoned: bad marker structure, a new SOI before EOI, or over the size limit.</summary>
    public long CorruptFrames { get; private set; }

    public long Frames { get; private set; }

    /// <summary>
    /// Finds the next complete JPEG at the start of <paramref name="buffer"/>. True: <paramref name="frame"/> is it
    /// (SOI .. EOI) and <paramref name="buffer"/> starts after it. False: more input is needed;
    /// <paramref name="buffer"/> has only lost leading bytes that cannot belong to a frame.
    /// </summary>
    public bool TryReadFrame(ref ReadOnlySequence<byte> buffer, out ReadOnlySequence<byte> frame)
    {
        frame = default;
        while (true)
        {
            switch (_phase)
            {
                case Phase.SeekSoi:
                    if (!SeekSoi(ref buffer))
                        return false;
                    break;

                case Phase.Marker:
                {
                    var reader = new SequenceReader<byte>(buffer);
                    if (_offset + 2 > buffer.Length)
                        return false;
                    reader.Advance(_offset);
                    reader.TryRead(out var ff);
                    if (ff != 0xFF)
                    {
                        Corrupt(ref buffer);
                        break;
                    }
                    reader.TryRead(out var marker);
                    // Fill bytes: any number of FF before the marker code.
                    while (marker == 0xFF)
                    {
                        _offset++;
                        if (!reader.TryRead(out marker))
                            return false;
                    }
                    switch (marker)
                    {
                        case 0xD9: // EOI
                        {
                            var end = _offset + 2;
                            frame = buffer.Slice(0, end);
                            buffer = buffer.Slice(end);
                            _phase = Phase.SeekSoi;
                            _offset = 0;
                            Frames++;
                            return true;
                        }
                        case 0xD8: // SOI before EOI: the frame we were in is cut short; the new one starts here.
                            CorruptFrames++;
                            SkippedBytes += _offset;
                            buffer = buffer.Slice(_offset);
                            _offset = 2;
                            break;
                        case >= 0xD0 and <= 0xD7 or 0x01: // RSTn, TEM: no length
                            _offset += 2;
                            break;
                        case 0x00:
                            Corrupt(ref buffer);
                            break;
                        default:
                        {
                            if (!reader.TryReadBigEndian(out short signed))
                                return false;
                            var length = (ushort)signed;
                            if (length < 2)
                            {
                                Corrupt(ref buffer);
                                break;
                            }
                            _offset += 2 + length;
                            if (_offset > maxFrameBytes)
                            {
                                Corrupt(ref buffer);
                                break;
                            }
                            if (marker == 0xDA)
                                _phase = Phase.Entropy; // SOS: its header is skipped, the scan follows
                            break;
                        }
                    }
                    break;
                }

                case Phase.Entropy:
                {
                    if (_offset >= buffer.Length)
                        return false;
                    var reader = new SequenceReader<byte>(buffer);
                    reader.Advance(_offset);
                    while (true)
                    {
                        if (!reader.TryAdvanceTo(0xFF, advancePastDelimiter: false))
                        {
                            _offset = buffer.Length;
                            if (_offset > maxFrameBytes)
                            {
                                Corrupt(ref buffer);
                                break;
                            }
                            return false;
                        }
                        var at = reader.Consumed;
                        if (!reader.TryPeek(1, out var next))
                        {
                            _offset = at; // resume at this FF when more arrives
                            return false;
                        }
                        if (next == 0x00 || next is >= 0xD0 and <= 0xD7)
                        {
                            reader.Advance(2); // stuffed FF, or a restart marker inside the scan
                            continue;
                        }
                        if (next == 0xFF)
                        {
                            reader.Advance(1); // fill byte
                            continue;
                        }
                        _offset = at; // a real marker: the scan is over (EOI, or DHT/SOS of a next scan)
                        _phase = Phase.Marker;
                        break;
                    }
                    if (_offset > maxFrameBytes)
                        Corrupt(ref buffer);
                    break;
                }
            }
        }
    }

    /// <summary>The input ended. Returns the bytes of an unfinished frame (0 when it ended on a frame boundary)
    /// and resets, so that the caller can report truncated input.</summary>
    public long Complete(in ReadOnlySequence<byte> remainder)
    {
        var pending = remainder.Length;
        if (pending > 0)
            SkippedBytes += pending;
        var truncated = _phase != Phase.SeekSoi ? pending : 0;
        if (truncated > 0)
            CorruptFrames++;
        _phase = Phase.SeekSoi;
        _offset = 0;
        return truncated;
    }

    /// <summary>Drops everything before the next <c>FF D8</c>; true when the buffer now starts at one.</summary>
    private bool SeekSoi(ref ReadOnlySequence<byte> buffer)
    {
        var reader = new SequenceReader<byte>(buffer);
        while (true)
        {
            if (!reader.TryAdvanceTo(0xFF, advancePastDelimiter: false))
            {
                SkippedBytes += buffer.Length;
                buffer = buffer.Slice(buffer.End);
                return false;
            }
            if (!reader.TryPeek(1, out var next))
            {
                // A lone FF at the end may be the first half of an SOI: keep it.
                SkippedBytes += reader.Consumed;
                buffer = buffer.Slice(reader.Position);
                return false;
            }
            if (next == 0xD8)
            {
                SkippedBytes += reader.Consumed;
                buffer = buffer.Slice(reader.Position);
                _phase = Phase.Marker;
                _offset = 2;
                return true;
            }
            reader.Advance(1);
        }
    }

    /// <summary>The current frame is not a well-formed JPEG: skip its SOI and look for the next one.</summary>
    private void Corrupt(ref ReadOnlySequence<byte> buffer)
    {
        CorruptFrames++;
        SkippedBytes += 2;
        buffer = buffer.Slice(2);
        _phase = Phase.SeekSoi;
        _offset = 0;
    }
}
