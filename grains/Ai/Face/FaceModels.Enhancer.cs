using System.Collections.Concurrent;
using Blankend.Orleans.Ai;
using Blankend.Orleans.Grains.Ai.Face.Insight;
using Blankend.Orleans.Grains.Ai.Runtime;

namespace Blankend.Orleans.Grains.Ai.Face;

/// <summary>The optional face enhancer (GFPGAN, <c>enhancer_model</c>) of the engine, per device.</summary>
internal sealed partial class FaceModels
{
    private readonly ConcurrentDictionary<string, Lazy<GfpganModel?>> _enhancers = new(StringComparer.Ordinal);
    private volatile string? _enhancerError;

    /// <summary>The enhancer on a device, or null when unavailable (<see cref="EnhancerUnavailable"/>).</summary>
    internal GfpganModel? Enhancer(string device) =>
        _enhancers.GetOrAdd(device, d => new Lazy<GfpganModel?>(() => LoadEnhancer(d))).Value;

    public string? EnhancerUnavailable => _enhancerError ?? Engine.Runtime.UnavailableReason(AiModelKind.Enhancer);

    private string EnhancerStatus
    {
        get
        {
            var parts = new List<string>();
            foreach (var (device, lazy) in _enhancers)
            {
                if (lazy.IsValueCreated && lazy.Value is { } g)
                    parts.Add($"{device}: GFPGAN 512 {Path.GetFileName(g.Model.Path)} ({g.Model.Provider})");
            }
            if (parts.Count > 0)
                return string.Join(", ", parts);
            return EnhancerUnavailable is { } why ? $"unavailable: {why}" : "not loaded yet";
        }
    }

    private GfpganModel? LoadEnhancer(string device)
    {
        var model = Engine.Runtime.Get(AiModelKind.Enhancer, device);
        if (model is null)
            return null;
        try
        {
            return new GfpganModel(model);
        }
        catch (InvalidDataException e)
        {
            _enhancerError = $"not a GFPGAN model: {e.Message}";
            return null;
        }
    }
}
