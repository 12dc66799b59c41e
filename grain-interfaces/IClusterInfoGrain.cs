namespace Blankend.Orleans;

/// <summary>
/// Operator view of the cluster: every silo the membership table knows (dead ones included, until Orleans
/// cleans them up) with its status and the compute devices it announced in silo metadata. Stateless; any silo
/// answers. Read by <c>GET /api/v1/cluster/status</c>.
/// </summary>
public interface IClusterInfoGrain : IGrainWithIntegerKey
{
    [ResponseTimeout("00:00:03")]
    Task<SiloInfo[]> GetSilos();

    /// <summary>The silos the answering silo currently sees as active (its own membership view: no further hop).
    /// Cheap; client-mode gateways poll it to learn about silo deaths they hold no connection to.</summary>
    [ResponseTimeout("00:00:02")]
    Task<string[]> GetActiveSilos();
}

/// <param name="Address">Orleans silo address (<c>S10.0.0.5:11111:123456789</c>): ip, silo port, generation.</param>
/// <param name="Status">Orleans status in the membership table: <c>Active</c>, <c>Joining</c>, <c>ShuttingDown</c>,
/// <c>Dead</c>, ...</param>
/// <param name="Role"><c>gpu</c> when the silo announced a GPU device, else <c>cpu</c>; empty when unknown (dead
/// silo, or a silo without Blankend metadata).</param>
/// <param name="Devices">Compute devices the silo announced in its metadata (<c>blankend_devices</c>:
/// <c>gpu0</c>, ..., <c>cpu0</c>): where device workers may be placed.</param>
[GenerateSerializer, Immutable, Alias("blankend.SiloInfo")]
public sealed record SiloInfo(
    [property: Id(0)] string Address,
    [property: Id(1)] string Name,
    [property: Id(2)] string Status,
    [property: Id(3)] string Host,
    [property: Id(4)] string Ip,
    [property: Id(5)] int SiloPort,
    [property: Id(6)] int GatewayPort,
    [property: Id(7)] DateTime StartTime,
    [property: Id(8)] DateTime IAmAliveTime,
    [property: Id(9)] string Role,
    [property: Id(10)] string[] Devices
);
