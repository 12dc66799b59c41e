using Blankend.Orleans.Codec;
using Blankend.Orleans.Grains.Placement;

namespace Blankend.Orleans.Grains.Codec;

/// <summary>Answers for the silo it lives on (see <see cref="SiloKeyedPlacementDirector"/>).</summary>
[SiloKeyedPlacement]
internal sealed class CodecSiloGrain(CodecHost host) : Grain, ICodecSiloGrain
{
    public Task<CodecSiloReport> GetReport() => host.ReportAsync(RuntimeIdentity);
}
