namespace Blankend.Orleans;

/// <summary>Rules for client_id / source values, shared by every entry point.</summary>
public static class ClientIds
{
    public const int MaxLength = 128;

    /// <summary>Prefix reserved for the bus's control messages (heartbeat, link request): never a camera.</summary>
    public const string ReservedPrefix = "__";

    public static bool IsValid(string? value, out string why)
    {
        if (string.IsNullOrEmpty(value))
        {
            why = "must not be empty";
            return false;
        }
        if (value.Length > MaxLength)
        {
            why = $"must be at most {MaxLength} characters";
            return false;
        }
        foreach (var c in value)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':' or '@'))
            {
                why = "may contain only ASCII letters, digits and - _ . : @";
                return false;
            }
        }
        if (value.StartsWith(ReservedPrefix, StringComparison.Ordinal))
        {
            why = $"must not start with '{ReservedPrefix}' (reserved for bus control messages)";
            return false;
        }
        why = "";
        return true;
    }
}
