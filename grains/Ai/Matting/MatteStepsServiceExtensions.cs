using Blankend.Orleans.Grains.Ai.Depth;
using Blankend.Orleans.Grains.Devices;
using Microsoft.Extensions.DependencyInjection;

namespace Blankend.Orleans.Grains.Ai.Matting;

internal static class MatteStepsServiceExtensions
{
    /// <summary>Registers <see cref="MatteStep"/> then <see cref="DepthStep"/> as <see cref="IFrameStep"/> singletons
    /// (each also resolvable as itself, for its Status). Needs <see cref="AiEngine"/> registered.</summary>
    public static IServiceCollection AddBlankendMatteSteps(this IServiceCollection s)
    {
        s.AddSingleton(sp => new MatteStep(sp.GetRequiredService<AiEngine>()));
        s.AddSingleton(sp => new DepthStep(sp.GetRequiredService<AiEngine>()));
        s.AddSingleton<IFrameStep>(sp => sp.GetRequiredService<MatteStep>());
        s.AddSingleton<IFrameStep>(sp => sp.GetRequiredService<DepthStep>());
        return s;
    }
}
