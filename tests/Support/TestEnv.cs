using System.Net;
using System.Net.Sockets;

namespace Blankend.Orleans.Tests.Support;

public static class TestEnv
{
    public static string TestData(string name) => Path.Combine(AppContext.BaseDirectory, "testdata", name);

    /// <summary>A client_id or identity no other test uses: <paramref name="prefix"/>-8 hex digits.</summary>
    public static string NewId(string prefix) => prefix + "-" + Guid.NewGuid().ToString("N")[..8];

    private static readonly Lock PortGate = new();
    private static readonly HashSet<int> Handed = [];

    /// <summary>A loopback TCP port free right now and not handed out before in this test run.</summary>
    public static int FreePort()
    {
        lock (PortGate)
        {
            while (true)
            {
                using var l = new TcpListener(IPAddress.Loopback, 0);
                l.Start();
                var port = ((IPEndPoint)l.LocalEndpoint).Port;
                l.Stop();
                if (Handed.Add(port))
                    return port;
            }
        }
    }

    /// <summary>Command-line settings that give an embedded silo its own ports (tests run side by side).</summary>
    public static string[] SiloPortArgs()
    {
        var silo = FreePort();
        return
        [
            $"--cluster:silo_port={silo}",
            $"--cluster:primary_silo_port={silo}",
            $"--cluster:gateway_port={FreePort()}",
        ];
    }

    /// <summary>Arguments for a gateway app that is built (or started) in the test process: any loopback port for
    /// Kestrel, free ports for its embedded silo, then <paramref name="extra"/>.</summary>
    public static string[] GatewayArgs(params string[] extra) =>
        ["--urls", "http://127.0.0.1:0", .. SiloPortArgs(), .. extra];
}
