namespace Blankend.Orleans.Grains.Ai.Face.Insight;

/// <summary>A float tensor read from an ONNX file: its name, dims and values (row-major).</summary>
internal sealed record OnnxTensor(string Name, long[] Dims, float[] Values);

/// <summary>
/// Reads graph initializers straight from an ONNX file (protobuf wire format), because ONNX Runtime does not
/// expose them and inswapper keeps its <c>emap</c> as the graph's last initializer. Only the fields needed are
/// decoded (ModelProto.graph = 7; GraphProto.initializer = 5; TensorProto dims = 1, data_type = 2,
/// float_data = 4, name = 8, raw_data = 9, data_location = 14); everything else is skipped by seeking, so a
/// 500 MB model costs a walk over its field headers plus the one tensor read.
/// </summary>
internal static class OnnxInitializerReader
{
    private const int Float = 1,
        Float16 = 10;

    /// <summary>The graph's last initializer as floats (FLOAT or FLOAT16).</summary>
    /// <exception cref="InvalidDataException">Not an ONNX file, no initializer, or an unsupported tensor.</exception>
    public static OnnxTensor ReadLast(string path)
    {
        using var stream = new FileStream(
            path,
            FileMode.Open,
            FileAccess.Read,
            FileShare.Read,
            1 << 16,
            FileOptions.RandomAccess
        );
        var r = new Reader(stream);
        // ModelProto.graph is field 7; GraphProto.initializer is field 5 (length-delimited), the last one is emap.
        var (graphStart, graphEnd) = LastField(r, stream.Length, 7);
        if (graphStart < 0)
            throw new InvalidDataException("no graph in the file (not an ONNX model?)");
        r.Seek(graphStart);
        var (lastStart, lastEnd) = LastField(r, graphEnd, 5);
        if (lastStart < 0)
            throw new InvalidDataException("the graph has no initializer");
        return ReadTensor(r, lastStart, lastEnd);
    }

    /// <summary>Where the last length-delimited field <paramref name="wanted"/> lies between the reader's position
    /// and <paramref name="end"/> (its payload, start and end); (-1, -1) when there is none.</summary>
    private static (long Start, long End) LastField(Reader r, long end, int wanted)
    {
        long start = -1,
            stop = -1;
        while (r.Position < end)
        {
            var (field, wire) = r.Tag();
            if (field == wanted && wire == 2)
            {
                var len = r.Length();
                start = r.Position;
                stop = start + len;
                r.Seek(stop);
            }
            else
            {
                r.Skip(wire);
            }
        }
        return (start, stop);
    }

    private static OnnxTensor ReadTensor(Reader r, long start, long end)
    {
        var dims = new List<long>();
        var type = 0;
        var name = "";
        var floats = new List<float>();
        byte[]? raw = null;
        var external = false;
        r.Seek(start);
        while (r.Position < end)
        {
            var (field, wire) = r.Tag();
            switch (field, wire)
            {
                case (1, 0):
                    dims.Add((long)r.Varint());
                    break;
                case (1, 2):
                    for (var e = r.Position + r.Length(); r.Position < e; )
                        dims.Add((long)r.Varint());
                    break;
                case (2, 0):
                    type = (int)r.Varint();
                    break;
                case (4, 5):
                    floats.Add(BitConverter.Int32BitsToSingle((int)r.Fixed32()));
                    break;
                case (4, 2):
                    for (var e = r.Position + r.Length(); r.Position < e; )
                        floats.Add(BitConverter.Int32BitsToSingle((int)r.Fixed32()));
                    break;
                case (8, 2):
                    name = System.Text.Encoding.UTF8.GetString(r.Bytes(r.Length()));
                    break;
                case (9, 2):
                    raw = r.Bytes(r.Length());
                    break;
                case (14, 0):
                    external = r.Varint() == 1;
                    break;
                default:
                    r.Skip(wire);
                    break;
            }
        }
        if (external)
            throw new InvalidDataException($"initializer '{name}' is stored as external data (not supported)");
        long count = 1;
        foreach (var d in dims)
            count *= d;
        if (count is < 0 or > 64L * 1024 * 1024)
            throw new InvalidDataException($"initializer '{name}' has an unusable size [{string.Join(',', dims)}]");
        float[] values;
        if (type == Float)
        {
            if (raw is not null)
            {
                if (raw.Length != count * 4)
                    throw new InvalidDataException($"initializer '{name}': {raw.Length} raw bytes for {count} floats");
                values = new float[count];
                Buffer.BlockCopy(raw, 0, values, 0, raw.Length);
                if (!BitConverter.IsLittleEndian)
                    throw new PlatformNotSupportedException("big-endian host");
            }
            else
            {
                if (floats.Count != count)
                    throw new InvalidDataException(
                        $"initializer '{name}': {floats.Count} floats for dims [{string.Join(',', dims)}]"
                    );
                values = [.. floats];
            }
        }
        else if (type == Float16 && raw is not null && raw.Length == count * 2)
        {
            values = new float[count];
            for (var i = 0; i < count; i++)
                values[i] = (float)BitConverter.ToHalf(raw, i * 2);
        }
        else
        {
            throw new InvalidDataException($"initializer '{name}' has data type {type} (FLOAT or FLOAT16 expected)");
        }
        return new OnnxTensor(name, [.. dims], values);
    }

    /// <summary>Minimal protobuf wire-format cursor over a seekable stream.</summary>
    private sealed class Reader(Stream s)
    {
        public long Position => s.Position;

        public void Seek(long p) => s.Position = p;

        public (int Field, int Wire) Tag()
        {
            var t = Varint();
            var field = (int)(t >> 3);
            if (field == 0)
                throw new InvalidDataException("malformed protobuf (field 0)");
            return (field, (int)(t & 7));
        }

        public ulong Varint()
        {
            ulong v = 0;
            for (var shift = 0; shift < 64; shift += 7)
            {
                var b = s.ReadByte();
                if (b < 0)
                    throw new InvalidDataException("truncated protobuf (varint)");
                v |= (ulong)(b & 0x7F) << shift;
                if ((b & 0x80) == 0)
                    return v;
            }
            throw new InvalidDataException("malformed protobuf (varint too long)");
        }

        public long Length()
        {
            var len = Varint();
            if (len > (ulong)(s.Length - s.Position))
                throw new InvalidDataException("truncated protobuf (length past the end)");
            return (long)len;
        }

        public uint Fixed32()
        {
            Span<byte> b = stackalloc byte[4];
            s.ReadExactly(b);
            return System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(b);
        }

        public byte[] Bytes(long n)
        {
            var b = new byte[n];
            s.ReadExactly(b);
            return b;
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0:
                    Varint();
                    break;
                case 1:
                    Seek(Position + 8);
                    break;
                case 2:
                    var n = Length();
                    Seek(Position + n);
                    break;
                case 5:
                    Seek(Position + 4);
                    break;
                default:
                    throw new InvalidDataException($"unsupported protobuf wire type {wire}");
            }
        }
    }
}
