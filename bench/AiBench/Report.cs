using System.Globalization;
using System.Text;

namespace Blankend.Bench.AiBench;

/// <summary>The markdown tables of the models and end-to-end parts (scripts/gpu-check.sh adds a GPU column).</summary>
internal static class Report
{
    public static string Markdown(IReadOnlyList<ModelRow> models, IReadOnlyList<CameraRow> cameras)
    {
        var md = new StringBuilder();
        var c = CultureInfo.InvariantCulture;
        if (models.Count > 0)
        {
            md.AppendLine("| device | provider | model | input | batch | ms per run (median) | images/s |");
            md.AppendLine("| --- | --- | --- | --- | --- | --- | --- |");
            foreach (var r in models)
            {
                if (r.Runs == 0)
                    md.AppendLine(
                        c,
                        $"| {r.Device} | {r.Provider} | {r.Model} | {r.Input} | {r.Batch} | - | {r.Note} |"
                    );
                else
                    md.AppendLine(
                        c,
                        $"| {r.Device} | {r.Provider} | {r.Model} | {r.Input} | {r.Batch} | {r.MedianMs:F2} | {r.ImagesPerSecond:F0} |"
                    );
            }
        }
        if (cameras.Count > 0)
        {
            if (models.Count > 0)
                md.AppendLine();
            md.AppendLine(
                "| device | cameras (720p30) | workers | per camera fps mean / min | total processed fps | drops/s | latency p50 / p99 ms | frames per batch | process CPU % (100 = 1 core) |"
            );
            md.AppendLine("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
            foreach (var r in cameras)
            {
                md.AppendLine(
                    c,
                    $"| {r.Device} | {r.Cameras} | {r.Workers} | {r.CameraFpsMean:F1} / {r.CameraFpsMin:F1} | {r.TotalFps:F1} | {r.DropsPerSecond:F1} | {r.P50Ms:F1} / {r.P99Ms:F1} | {r.MeanBatch:F2} | {r.CpuPercent:F0} |"
                );
            }
        }
        return md.ToString();
    }
}
