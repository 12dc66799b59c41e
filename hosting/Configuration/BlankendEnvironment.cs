using System.Collections;
using System.Globalization;

namespace Blankend.Orleans.Hosting;

/// <summary>
/// The one place that maps the contract's environment variable names onto config keys. Values are checked
/// here so that an error names the variable the operator actually set.
/// </summary>
public static class BlankendEnvironment
{
    public enum ValueKind
    {
        Text,
        Bool,
        Number,
    }

    public sealed record Mapping(string Variable, string Key, ValueKind Kind);

    public static readonly IReadOnlyList<Mapping> Mappings =
    [
        new("BLANKEND_RELAY_ENABLED", "stream:relay_enabled", ValueKind.Bool),
        new("BLANKEND_ZMQ_ENDPOINT", "stream:zmq_endpoint", ValueKind.Text),
        new("BLANKEND_ZMQ_IDENTITY", "stream:zmq_identity", ValueKind.Text),
        new("BLANKEND_HW_TRANSCODE", "video_processing:hw_transcode", ValueKind.Bool),
        new("BLANKEND_VIDEO_PROCESSING_ENABLED", "video_processing:enabled", ValueKind.Bool),
        new("BLANKEND_REALTIME_PIPELINE_ENABLED", "realtime_pipeline:enabled", ValueKind.Bool),
        new("BLANKEND_REALTIME_PIPELINE_WORKERS", "realtime_pipeline:workers", ValueKind.Number),
        new("FACE_DETECT_INTERVAL", "ai:face_detect_interval", ValueKind.Number),
        new("SIMPLE_FORWARD", "ai:simple_forward", ValueKind.Bool),
        new("FACE_DETECT_MODEL", "ai:face_detect_model", ValueKind.Text),
        new("SWAP_MODEL", "ai:swap_model", ValueKind.Text),
        new("RVM_MODEL", "ai:rvm_model", ValueKind.Text),
        new("DEPTH_MODEL", "ai:depth_model", ValueKind.Text),
        new("ARCFACE_MODEL", "ai:arcface_model", ValueKind.Text),
        new("INSIGHTFACE_APP", "ai:insightface_dir", ValueKind.Text),
        new("ENHANCER_MODEL", "ai:enhancer_model", ValueKind.Text),
        new("BLANKEND_AI_PROVIDER", "ai:provider", ValueKind.Text),
        new("BLANKEND_AI_REQUIRE_GPU", "ai:require_gpu", ValueKind.Bool),
        new("BLANKEND_AI_MAX_BATCH", "ai:max_batch", ValueKind.Number),
        new("BLANKEND_AI_BATCH_TIMEOUT_MS", "ai:batch_timeout_ms", ValueKind.Number),
        // The project's own additions (documented in README / docs/configuration.md).
        new("BLANKEND_CLUSTER_MODE", "cluster:mode", ValueKind.Text),
        new("BLANKEND_CLUSTERING", "cluster:clustering", ValueKind.Text),
        new("BLANKEND_REDIS", "cluster:redis", ValueKind.Text),
        new("BLANKEND_POSTGRES", "cluster:postgres", ValueKind.Text),
        new("BLANKEND_CLUSTER_ID", "cluster:cluster_id", ValueKind.Text),
        new("BLANKEND_ADVERTISED_IP", "cluster:advertised_ip", ValueKind.Text),
        new("BLANKEND_SILO_PORT", "cluster:silo_port", ValueKind.Number),
        new("BLANKEND_GATEWAY_PORT", "cluster:gateway_port", ValueKind.Number),
        // Cluster TLS (docs/security.md): paths, and the password as given (never logged); peers as a comma list.
        new("BLANKEND_CLUSTER_TLS_ENABLED", "cluster:tls:enabled", ValueKind.Bool),
        new("BLANKEND_CLUSTER_TLS_CERTIFICATE", "cluster:tls:certificate", ValueKind.Text),
        new("BLANKEND_CLUSTER_TLS_CERTIFICATE_KEY", "cluster:tls:certificate_key", ValueKind.Text),
        new("BLANKEND_CLUSTER_TLS_CERTIFICATE_PASSWORD", "cluster:tls:certificate_password", ValueKind.Text),
        new("BLANKEND_CLUSTER_TLS_CA_CERTIFICATE", "cluster:tls:ca_certificate", ValueKind.Text),
        new(
            "BLANKEND_CLUSTER_TLS_REQUIRE_CLIENT_CERTIFICATE",
            "cluster:tls:require_client_certificate",
            ValueKind.Bool
        ),
        new("BLANKEND_CLUSTER_TLS_ALLOWED_PEERS", "cluster:tls:allowed_peers:0", ValueKind.Text),
        // Access control (docs/security.md): the token and the lists are read as given (lists as comma lists).
        new("BLANKEND_API_TOKEN", "auth:api_token", ValueKind.Text),
        new("BLANKEND_ALLOW_ANONYMOUS", "auth:allow_anonymous", ValueKind.Bool),
        new("BLANKEND_ALLOWED_ORIGINS", "auth:allowed_origins:0", ValueKind.Text),
        new("BLANKEND_ALLOWED_HOSTS", "auth:allowed_hosts:0", ValueKind.Text),
    ];

    /// <summary>Name of the variable that points at another config file.</summary>
    public const string ConfigFileVariable = "BLANKEND_CONFIG";

    /// <summary>Translates the variables that are set into config keys; throws naming the variable on a bad
    /// value.</summary>
    public static Dictionary<string, string?> ToConfigKeys(IDictionary environment)
    {
        var result = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        var errors = new List<string>();
        foreach (var m in Mappings)
        {
            if (environment[m.Variable] is not string raw)
                continue;
            var value = raw.Trim();
            switch (m.Kind)
            {
                case ValueKind.Bool:
                    if (TryParseBool(value, out var b))
                        result[m.Key] = b ? "true" : "false";
                    else
                        errors.Add($"{m.Variable}='{raw}' is not a boolean (use 1/0, true/false, yes/no, on/off)");
                    break;
                case ValueKind.Number:
                    if (int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var i))
                        result[m.Key] = i.ToString(CultureInfo.InvariantCulture);
                    else
                        errors.Add($"{m.Variable}='{raw}' is not an integer");
                    break;
                default:
                    result[m.Key] = value;
                    break;
            }
        }
        if (errors.Count > 0)
            throw new BlankendConfigurationException(errors);
        return result;
    }

    public static bool TryParseBool(string value, out bool result)
    {
        switch (value.ToLowerInvariant())
        {
            case "1" or "true" or "yes" or "on":
                result = true;
                return true;
            case "0" or "false" or "no" or "off" or "":
                result = false;
                return true;
            default:
                result = false;
                return false;
        }
    }
}

/// <summary>A configuration error that stops start-up; its message names every bad key.</summary>
public sealed class BlankendConfigurationException(IEnumerable<string> errors)
    : Exception("invalid configuration: " + string.Join("; ", errors))
{
    public IReadOnlyList<string> Errors { get; } = [.. errors];
}
