using System.Text.Json.Serialization;
using Blankend.Orleans.Gateway.Health;

namespace Blankend.Orleans.Gateway.Endpoints;

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull
)]
[JsonSerializable(typeof(ErrorMessage))]
[JsonSerializable(typeof(HealthReport))]
[JsonSerializable(typeof(StreamStatus))]
[JsonSerializable(typeof(ClusterStatus))]
[JsonSerializable(typeof(RelayStatus))]
internal sealed partial class GatewayJson : JsonSerializerContext;
