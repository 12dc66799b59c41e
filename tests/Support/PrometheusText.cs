using System.Globalization;

namespace Blankend.Orleans.Tests.Support;

/// <summary>
/// The Prometheus text exposition, parsed into samples (name, labels, value), so that tests compare the value of
/// one exact series rather than match text with a pattern.
/// </summary>
public sealed class PrometheusText
{
    public sealed record Sample(string Name, IReadOnlyDictionary<string, string> Labels, double Value);

    private PrometheusText(string raw, List<Sample> samples)
    {
        Raw = raw;
        Samples = samples;
    }

    public string Raw { get; }

    public IReadOnlyList<Sample> Samples { get; }

    public static PrometheusText Parse(string text)
    {
        var samples = new List<Sample>();
        foreach (var rawLine in text.Split('\n'))
        {
            var line = rawLine.TrimEnd('\r');
            if (line.Length == 0 || line[0] == '#')
                continue;
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            int i;
            var brace = line.IndexOf('{');
            var space = line.IndexOf(' ');
            string name;
            if (brace >= 0 && (space < 0 || brace < space))
            {
                name = line[..brace];
                i = brace + 1;
                while (line[i] != '}')
                {
                    var eq = line.IndexOf('=', i);
                    var key = line[i..eq];
                    i = eq + 2; // past ="
                    var value = new System.Text.StringBuilder();
                    while (line[i] != '"')
                    {
                        if (line[i] == '\\')
                        {
                            i++;
                            value.Append(
                                line[i] switch
                                {
                                    'n' => '\n',
                                    var c => c,
                                }
                            );
                        }
                        else
                            value.Append(line[i]);
                        i++;
                    }
                    labels[key] = value.ToString();
                    i++; // closing quote
                    if (line[i] == ',')
                        i++;
                }
                i++; // }
            }
            else
            {
                name = line[..space];
                i = space;
            }
            var rest = line[i..].Trim().Split(' ');
            var number = rest[0] switch
            {
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                "NaN" => double.NaN,
                var v => double.Parse(v, CultureInfo.InvariantCulture),
            };
            samples.Add(new Sample(name, labels, number));
        }
        return new PrometheusText(text, samples);
    }

    /// <summary>The samples of metric <paramref name="name"/> whose labels include all of <paramref name="labels"/>
    /// ("key=value"; other labels, such as otel_scope_name, may be present).</summary>
    public IReadOnlyList<Sample> Find(string name, params string[] labels)
    {
        var wanted = labels.Select(l => l.Split('=', 2)).ToArray();
        return Samples
            .Where(s => s.Name == name && wanted.All(w => s.Labels.TryGetValue(w[0], out var v) && v == w[1]))
            .ToList();
    }

    /// <summary>The value of the one series that matches, or null when none does; more than one is an error.</summary>
    public double? Value(string name, params string[] labels)
    {
        var found = Find(name, labels);
        return found.Count switch
        {
            0 => null,
            1 => found[0].Value,
            _ => throw new InvalidOperationException(
                $"{found.Count} series of {name} match {{{string.Join(",", labels)}}}"
            ),
        };
    }

    public override string ToString() => Raw;
}
