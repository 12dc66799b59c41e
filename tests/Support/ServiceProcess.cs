using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace Blankend.Orleans.Tests.Support;

/// <summary>
/// A real gateway or silo process (<c>dotnet Blankend.Orleans.Gateway.dll ...</c>), as an operator runs it.
/// Output is kept for assertions and failure messages; disposal sends SIGTERM, then kills.
/// </summary>
public sealed class ServiceProcess : IAsyncDisposable
{
    private readonly StringBuilder _output = new();
    private readonly Lock _gate = new();

    private ServiceProcess(Process process, Uri? http)
    {
        Process = process;
        Http = http;
        Client = new HttpClient { BaseAddress = http, Timeout = TimeSpan.FromSeconds(10) };
    }

    public Process Process { get; }

    public Uri? Http { get; }

    public HttpClient Client { get; }

    public string Output
    {
        get
        {
            lock (_gate)
                return _output.ToString();
        }
    }

    public Uri Ws(string pathAndQuery) => new($"ws://{Http!.Authority}{pathAndQuery}");

    public static string AssemblyPath(string name) => Path.Combine(AppContext.BaseDirectory, name + ".dll");

    /// <summary>Starts a gateway on a free loopback port (its silo, if embedded, on free ports too).</summary>
    public static ServiceProcess StartGateway(params string[] args) => StartGateway(null, args);

    /// <summary>As <see cref="StartGateway(string[])"/>, with extra environment variables for the process.</summary>
    public static ServiceProcess StartGateway(IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var port = TestEnv.FreePort();
        var url = new Uri($"http://127.0.0.1:{port}/");
        return Start("Blankend.Orleans.Gateway", url, ["--urls", $"http://127.0.0.1:{port}", .. args], environment);
    }

    public static ServiceProcess StartSilo(params string[] args) => Start("Blankend.Orleans.Silo", null, args, null);

    public static ServiceProcess StartSilo(IReadOnlyDictionary<string, string>? environment, params string[] args) =>
        Start("Blankend.Orleans.Silo", null, args, environment);

    private static ServiceProcess Start(
        string assembly,
        Uri? http,
        string[] args,
        IReadOnlyDictionary<string, string>? environment
    )
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        psi.ArgumentList.Add(AssemblyPath(assembly));
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_gcServer"] = "0"; // several processes share two cores in CI
        foreach (var (k, v) in environment ?? new Dictionary<string, string>())
            psi.Environment[k] = v;
        var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start " + assembly);
        var sp = new ServiceProcess(process, http);
        process.OutputDataReceived += (_, e) => sp.Append(e.Data);
        process.ErrorDataReceived += (_, e) => sp.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return sp;
    }

    private void Append(string? line)
    {
        if (line is null)
            return;
        lock (_gate)
            _output.AppendLine(line);
    }

    /// <summary>Waits until /healthz answers 200.</summary>
    public async Task WaitHealthyAsync(TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        while (DateTime.UtcNow < deadline)
        {
            if (Process.HasExited)
                throw new InvalidOperationException($"process exited with {Process.ExitCode}:\n{Output}");
            try
            {
                using var r = await Client.GetAsync("healthz");
                if (r.IsSuccessStatusCode)
                    return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            await Task.Delay(100);
        }
        throw new TimeoutException($"not healthy in time:\n{Output}");
    }

    public async Task<JsonElement> StreamStatusAsync() =>
        await Client.GetFromJsonAsync<JsonElement>("api/v1/stream/status");

    /// <summary>Sends SIGTERM (what Ctrl-C, systemd and Kubernetes send).</summary>
    public void Terminate()
    {
        using var kill = Process.Start("kill", ["-TERM", Process.Id.ToString()]);
        kill?.WaitForExit();
    }

    public async Task<bool> WaitExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await Process.WaitForExitAsync(cts.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        if (!Process.HasExited)
        {
            Terminate();
            if (!await WaitExitAsync(TimeSpan.FromSeconds(10)))
                Process.Kill(entireProcessTree: true);
        }
        await Process.WaitForExitAsync();
        Process.Dispose();
    }
}
