using System.Text.Json;
using System.Text.Json.Serialization;

namespace Blankend.Orleans.Hosting;

/// <summary>
/// One recording as the list API shows it, kept in a sidecar file next to its MP4 (<c>{file}.json</c> in
/// <c>recording:folder</c>). The writer creates it at the start (<c>live</c>), refreshes <see cref="Updated"/>
/// and <see cref="Bytes"/> every <see cref="RecordingRegistry.HeartbeatInterval"/>, and writes the outcome at the
/// end (<c>done</c> | <c>failed</c>). A <c>live</c> entry whose heartbeat is older than
/// <see cref="RecordingRegistry.StaleAfter"/> lost its writer (its silo died): it is listed as <c>failed</c>.
/// </summary>
public sealed record RecordingEntry(
    string Id,
    string Source,
    string Kind,
    string File,
    long Bytes,
    DateTimeOffset Started,
    DateTimeOffset? Ended,
    string State,
    string? Reason,
    DateTimeOffset Updated
);

public static class RecordingStates
{
    public const string Live = "live";
    public const string Done = "done";
    public const string Failed = "failed";
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true)]
[JsonSerializable(typeof(RecordingEntry))]
public sealed partial class RecordingRegistryJson : JsonSerializerContext;

/// <summary>
/// The recordings list lives in the recordings folder itself (sidecar JSON files), not in a grain: it survives
/// the death of the silo that wrote a recording, and any silo or gateway that sees the folder can list, serve and
/// delete files. With several hosts the folder must be shared (a volume) for the list to be complete.
/// </summary>
public static class RecordingRegistry
{
    public const string SidecarSuffix = ".json";

    public static readonly TimeSpan HeartbeatInterval = TimeSpan.FromSeconds(2);

    /// <summary>Several missed heartbeats: long enough for a busy host, short enough for a useful list.</summary>
    public static readonly TimeSpan StaleAfter = TimeSpan.FromSeconds(10);

    public static string SidecarOf(string mp4Path) => mp4Path + SidecarSuffix;

    /// <summary>Atomic replace (write a temp file, rename): a reader never sees half a sidecar, and a crash
    /// mid-write leaves the previous one.</summary>
    public static void Write(string folder, RecordingEntry entry)
    {
        var path = Path.Combine(folder, entry.File + SidecarSuffix);
        var tmp = path + ".tmp";
        File.WriteAllBytes(
            tmp,
            JsonSerializer.SerializeToUtf8Bytes(entry, RecordingRegistryJson.Default.RecordingEntry)
        );
        File.Move(tmp, path, overwrite: true);
    }

    public static RecordingEntry? TryRead(string sidecarPath)
    {
        try
        {
            return JsonSerializer.Deserialize(
                File.ReadAllBytes(sidecarPath),
                RecordingRegistryJson.Default.RecordingEntry
            );
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            return null;
        }
    }

    /// <summary>Every recording in <paramref name="folder"/>, newest first, with a stale <c>live</c> entry shown
    /// as <c>failed</c> and the file's current size.</summary>
    public static List<RecordingEntry> List(string folder, DateTimeOffset now)
    {
        var list = Stored(folder);
        for (var i = 0; i < list.Count; i++)
            list[i] = Effective(list[i], now);
        list.Sort((a, b) => b.Started.CompareTo(a.Started));
        return list;
    }

    /// <summary>The sidecars as written (a dead writer's entry still says <c>live</c>).</summary>
    public static List<RecordingEntry> Stored(string folder)
    {
        var list = new List<RecordingEntry>();
        if (!Directory.Exists(folder))
            return list;
        foreach (var sidecar in Directory.EnumerateFiles(folder, "*.mp4" + SidecarSuffix))
        {
            if (TryRead(sidecar) is not { } e)
                continue;
            // The file name comes from the sidecar's own name, never from its content (it could have been edited).
            var file = Path.GetFileName(sidecar)[..^SidecarSuffix.Length];
            var mp4 = Path.Combine(folder, file);
            long bytes;
            try
            {
                bytes = File.Exists(mp4) ? new FileInfo(mp4).Length : 0;
            }
            catch (IOException)
            {
                bytes = e.Bytes;
            }
            list.Add(e with { File = file, Bytes = bytes });
        }
        return list;
    }

    public static RecordingEntry Effective(RecordingEntry e, DateTimeOffset now) =>
        e.State == RecordingStates.Live && now - e.Updated > StaleAfter
            ? e with
            {
                State = RecordingStates.Failed,
                Reason =
                    $"the writer stopped at {e.Updated:O} (its silo or ffmpeg died); the file holds what was written up to then",
                Ended = e.Updated,
            }
            : e;

    public static RecordingEntry? Find(string folder, string id, DateTimeOffset now) =>
        List(folder, now).FirstOrDefault(e => string.Equals(e.Id, id, StringComparison.Ordinal));

    /// <summary>Live recordings whose heartbeat is fresh (what <c>limits:max_recordings</c> counts).</summary>
    public static int CountLive(string folder, DateTimeOffset now) =>
        List(folder, now).Count(e => e.State == RecordingStates.Live);

    /// <summary>Free space of the folder's file system in MiB; null when it cannot be told.</summary>
    public static long? FreeMb(string folder)
    {
        try
        {
            return new DriveInfo(Path.GetFullPath(folder)).AvailableFreeSpace / (1024 * 1024);
        }
        catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
