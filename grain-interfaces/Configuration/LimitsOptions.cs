using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Configuration;

/// <summary>Section <c>limits</c>: caps on what clients can make the service hold. Each refusal is counted in a
/// metric and answered clearly (HTTP 429 problem+json).</summary>
public sealed class LimitsOptions
{
    public const string Section = "limits";

    /// <summary>Live recordings (each one an ffmpeg libx264 process), counted from the recordings folder's
    /// registry: cluster-wide when the folder is shared, per host otherwise. A start beyond it answers 429.</summary>
    [ConfigurationKeyName("max_recordings")] public int MaxRecordings { get; set; } = 16;
}

public sealed class LimitsOptionsValidator : IValidateOptions<LimitsOptions>
{
    public ValidateOptionsResult Validate(string? name, LimitsOptions o)
    {
        var f = new Failures();
        f.Range("limits:max_recordings", o.MaxRecordings, 0, 10_000);
        return f.Result;
    }
}
