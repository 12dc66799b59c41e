using Blankend.Orleans.Gateway.Fanout;

namespace Blankend.Orleans.Gateway.Endpoints;

internal static partial class QueryRules
{
    /// <summary><c>kind=any|raw|processed</c> (default any). Raw frames are asked of one source's grain, so
    /// <c>kind=raw</c> needs a <c>source</c>.</summary>
    public static bool TryViewerKind(HttpRequest request, string? source, out ViewerKind kind, out string? error)
    {
        error = null;
        kind = ViewerKind.Any;
        var values = request.Query["kind"];
        if (values.Count == 0)
            return true;
        switch (values.Count == 1 ? values[0] : null)
        {
            case "any" or "":
                break;
            case "raw":
                kind = ViewerKind.Raw;
                break;
            case "processed":
                kind = ViewerKind.Processed;
                break;
            default:
                error = "'kind' must be any, raw or processed";
                return false;
        }
        if (kind == ViewerKind.Raw && source is null)
        {
            error = "'kind=raw' needs a 'source' (raw frames are watched per source)";
            return false;
        }
        return true;
    }
}
