using System.Globalization;
using System.Security;
using System.Text;

namespace Blankend.Bench.LoadGen;

/// <summary>One line (or point set) of a chart.</summary>
public sealed record Series(
    string Name,
    string Color,
    IReadOnlyList<(double X, double Y)> Points,
    bool Markers = false,
    bool Dashed = false
);

/// <summary>Minimal SVG line charts (no dependencies): linear or log x axis, linear y axis, legend.</summary>
public static class Svg
{
    public const int PanelWidth = 440;
    public const int PanelHeight = 320;
    private const int Left = 58,
        Right = 12,
        Top = 30,
        Bottom = 46;

    public static string Document(int width, int height, IEnumerable<string> parts)
    {
        var sb = new StringBuilder();
        sb.AppendLine(
            CultureInfo.InvariantCulture,
            $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"11\">"
        );
        sb.AppendLine(
            CultureInfo.InvariantCulture,
            $"<rect x=\"0\" y=\"0\" width=\"{width}\" height=\"{height}\" fill=\"white\"/>"
        );
        foreach (var p in parts)
        {
            sb.Append(p);
        }
        sb.AppendLine("</svg>");
        return sb.ToString();
    }

    /// <summary>A panel at (ox, oy), <see cref="PanelWidth"/> x <see cref="PanelHeight"/>.</summary>
    public static string Panel(
        double ox,
        double oy,
        string title,
        string xLabel,
        string yLabel,
        bool logX,
        (double Min, double Max) xRange,
        (double Min, double Max) yRange,
        IReadOnlyList<double> yTicks,
        IReadOnlyList<Series> series,
        IReadOnlyList<double>? yGuides = null,
        Func<double, double>? yMap = null,
        Func<double, string>? yTickLabel = null,
        bool legendBottomRight = false
    )
    {
        yMap ??= v => v;
        var sb = new StringBuilder();
        var w = PanelWidth - Left - Right;
        var h = PanelHeight - Top - Bottom;
        var x0 = ox + Left;
        var y0 = oy + Top;
        var (xmin, xmax) = xRange;
        if (logX)
        {
            xmin = Math.Max(xmin, 1e-3);
            xmax = Math.Max(xmax, xmin * 10);
        }
        else if (xmax <= xmin)
        {
            xmax = xmin + 1;
        }
        var (ymin, ymax) = yRange.Max > yRange.Min ? yRange : (yRange.Min, yRange.Min + 1);
        var (mmin, mmax) = (yMap(ymin), yMap(ymax));
        double X(double v) =>
            logX
                ? x0 + (Math.Log10(Math.Max(v, xmin)) - Math.Log10(xmin)) / (Math.Log10(xmax) - Math.Log10(xmin)) * w
                : x0 + (v - xmin) / (xmax - xmin) * w;
        double Y(double v) => y0 + h - (yMap(Math.Clamp(v, ymin, ymax)) - mmin) / (mmax - mmin) * h;

        sb.AppendLine(
            Inv(
                $"<text x=\"{ox + PanelWidth / 2.0:F1}\" y=\"{oy + 16:F1}\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">{Esc(title)}</text>"
            )
        );
        sb.AppendLine(
            Inv($"<rect x=\"{x0:F1}\" y=\"{y0:F1}\" width=\"{w}\" height=\"{h}\" fill=\"none\" stroke=\"#888\"/>")
        );

        // Grid and tick labels.
        // Over 4+ decades only the powers of ten get a label (the 2s and 5s keep their grid line).
        var wide = logX && Math.Log10(xmax / xmin) >= 3.9;
        foreach (var t in XTicks(logX, xmin, xmax))
        {
            var x = X(t);
            sb.AppendLine(
                Inv($"<line x1=\"{x:F1}\" y1=\"{y0:F1}\" x2=\"{x:F1}\" y2=\"{y0 + h:F1}\" stroke=\"#e4e4e4\"/>")
            );
            if (!wide || Math.Abs(Math.Log10(t) - Math.Round(Math.Log10(t))) < 1e-9)
            {
                sb.AppendLine(Inv($"<text x=\"{x:F1}\" y=\"{y0 + h + 14:F1}\" text-anchor=\"middle\">{Num(t)}</text>"));
            }
        }
        foreach (var t in yTicks)
        {
            var y = Y(t);
            sb.AppendLine(
                Inv($"<line x1=\"{x0:F1}\" y1=\"{y:F1}\" x2=\"{x0 + w:F1}\" y2=\"{y:F1}\" stroke=\"#e4e4e4\"/>")
            );
            sb.AppendLine(
                Inv(
                    $"<text x=\"{x0 - 4:F1}\" y=\"{y + 4:F1}\" text-anchor=\"end\">{Esc(yTickLabel?.Invoke(t) ?? Num(t))}</text>"
                )
            );
        }
        foreach (var g in yGuides ?? [])
        {
            var y = Y(g);
            sb.AppendLine(
                Inv(
                    $"<line x1=\"{x0:F1}\" y1=\"{y:F1}\" x2=\"{x0 + w:F1}\" y2=\"{y:F1}\" stroke=\"#bbb\" stroke-dasharray=\"3,3\"/>"
                )
            );
        }
        sb.AppendLine(
            Inv(
                $"<text x=\"{x0 + w / 2.0:F1}\" y=\"{oy + PanelHeight - 12:F1}\" text-anchor=\"middle\">{Esc(xLabel)}</text>"
            )
        );
        sb.AppendLine(
            Inv(
                $"<text transform=\"translate({ox + 14:F1},{y0 + h / 2.0:F1}) rotate(-90)\" text-anchor=\"middle\">{Esc(yLabel)}</text>"
            )
        );

        // Data.
        foreach (var s in series)
        {
            var pts = s.Points.Where(p => double.IsFinite(p.X) && double.IsFinite(p.Y) && (!logX || p.X > 0)).ToList();
            if (pts.Count == 0)
            {
                continue;
            }
            if (!s.Markers)
            {
                // Keep the file small: drop points that land within half a pixel of the last one kept.
                var kept = new List<(double X, double Y)> { pts[0] };
                for (var k = 1; k < pts.Count; k++)
                {
                    var last = kept[^1];
                    if (
                        k == pts.Count - 1
                        || Math.Abs(X(pts[k].X) - X(last.X)) >= 0.5
                        || Math.Abs(Y(pts[k].Y) - Y(last.Y)) >= 0.5
                    )
                    {
                        kept.Add(pts[k]);
                    }
                }
                pts = kept;
            }
            if (!s.Markers || pts.Count > 1)
            {
                var path = string.Join(" ", pts.Select(p => Inv($"{X(p.X):F1},{Y(p.Y):F1}")));
                sb.AppendLine(
                    Inv(
                        $"<polyline fill=\"none\" stroke=\"{s.Color}\" stroke-width=\"1.8\"{(s.Dashed ? " stroke-dasharray=\"6,4\"" : "")} points=\"{path}\"/>"
                    )
                );
            }
            if (s.Markers)
            {
                foreach (var p in pts)
                {
                    sb.AppendLine(Inv($"<circle cx=\"{X(p.X):F1}\" cy=\"{Y(p.Y):F1}\" r=\"3.5\" fill=\"{s.Color}\"/>"));
                }
            }
        }

        // Legend, inside the plot: top left, or bottom right (where a CDF leaves room).
        var named = series.Where(s => s.Name.Length > 0).ToList();
        var lw = named.Count == 0 ? 0 : 40 + 6.2 * named.Max(s => s.Name.Length);
        var lx = legendBottomRight ? x0 + w - lw - 4 : x0 + 8;
        var ly = legendBottomRight ? y0 + h - 15 * named.Count + 6 : y0 + 14;
        if (legendBottomRight && named.Count > 0)
        {
            sb.AppendLine(
                Inv(
                    $"<rect x=\"{lx - 4:F1}\" y=\"{ly - 13:F1}\" width=\"{lw:F1}\" height=\"{15 * named.Count + 2}\" fill=\"white\" fill-opacity=\"0.85\"/>"
                )
            );
        }
        foreach (var s in named)
        {
            sb.AppendLine(
                Inv(
                    $"<line x1=\"{lx:F1}\" y1=\"{ly - 4:F1}\" x2=\"{lx + 22:F1}\" y2=\"{ly - 4:F1}\" stroke=\"{s.Color}\" stroke-width=\"2.5\"{(s.Dashed ? " stroke-dasharray=\"6,4\"" : "")}/>"
                )
            );
            sb.AppendLine(Inv($"<text x=\"{lx + 27:F1}\" y=\"{ly:F1}\">{Esc(s.Name)}</text>"));
            ly += 15;
        }
        return sb.ToString();
    }

    private static IEnumerable<double> XTicks(bool logX, double min, double max)
    {
        if (logX)
        {
            for (var d = Math.Floor(Math.Log10(min)); d <= Math.Ceiling(Math.Log10(max)); d++)
            {
                foreach (var m in new[] { 1.0, 2.0, 5.0 })
                {
                    var v = m * Math.Pow(10, d);
                    if (v >= min * 0.999 && v <= max * 1.001)
                    {
                        yield return v;
                    }
                }
            }
            yield break;
        }
        foreach (var t in NiceTicks(min, max, 6))
        {
            yield return t;
        }
    }

    /// <summary>Round tick values (1, 2, 5 x 10^k steps) covering [min, max].</summary>
    public static List<double> NiceTicks(double min, double max, int count)
    {
        if (max <= min)
        {
            max = min + 1;
        }
        var raw = (max - min) / Math.Max(count, 1);
        var mag = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        var step = new[] { 1.0, 2.0, 5.0, 10.0 }.Select(m => m * mag).First(s => s >= raw);
        var ticks = new List<double>();
        for (var t = Math.Ceiling(min / step) * step; t <= max + step * 1e-9; t += step)
        {
            ticks.Add(Math.Round(t, 10));
        }
        return ticks;
    }

    /// <summary>An upper bound rounded up to a tick step.</summary>
    public static double NiceMax(double max)
    {
        if (max <= 0)
        {
            return 1;
        }
        var mag = Math.Pow(10, Math.Floor(Math.Log10(max)));
        return new[] { 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0 }.Select(m => m * mag).First(v => v >= max);
    }

    private static string Num(double v) =>
        v.ToString(v is < 0.01 and > 0 ? "G3" : "0.###", CultureInfo.InvariantCulture);

    private static string Esc(string s) => SecurityElement.Escape(s) ?? "";

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
