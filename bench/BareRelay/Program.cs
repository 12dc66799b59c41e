// Bare relay: the no-Orleans baseline the Orleans gateway is benchmarked against.
//   dotnet run --project bench/BareRelay -c Release -- --urls http://127.0.0.1:8100
// Contract (same as the gateway):
//   /video_in?client_id=SRC          each binary message = one JPEG (FF D8 .. FF D9)
//   /video_out?source=SRC&meta=0|1   every frame of SRC (all sources if absent) as one binary
//                                    message, preceded by a JSON text message when meta=1.
// Each viewer has a bounded queue of 8 frames, dropping the oldest when full; the payload is
// copied once at ingest into an exact-size array shared by every viewer.
// --strip_com=true drops a COM segment right after SOI before relaying: it stands in for a
// re-encoding path (which loses the load generator's stamp) to test the load generator's meta matching.
using Blankend.Bench.BareRelay;

var builder = WebApplication.CreateBuilder(args);
builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
var stripCom = builder.Configuration.GetValue<bool>("strip_com");
builder.Services.AddSingleton(_ => new Relay(stripCom));

// Backstop only: the WebSocket handlers finish their close handshakes well within this.
builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(5));

var app = builder.Build();
app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.FromSeconds(30) });

var stopping = app.Lifetime.ApplicationStopping;

app.MapGet("/healthz", () => Results.Text("ok"));
app.MapGet("/stats", (Relay relay) => Results.Json(relay.Stats()));

app.Map("/video_in", async (HttpContext ctx, Relay relay) =>
{
    if (!ctx.WebSockets.IsWebSocketRequest)
    {
        return Results.BadRequest("websocket expected");
    }
    var clientId = ctx.Request.Query["client_id"].ToString();
    if (string.IsNullOrEmpty(clientId))
    {
        clientId = "SRC";
    }
    using var ws = await ctx.WebSockets.AcceptWebSocketAsync();
    using var cts = CancellationTokenSource.CreateLinkedTokenSource(stopping, ctx.RequestAborted);
    await relay.IngestAsync(ws, clientId, cts.Token);
    return Results.Empty;
});

app.Map("/video_out", async (HttpContext ctx, Relay relay) =>
{
    if (!ctx.WebSockets.IsWebSocketRequest)
    {
        return Results.BadRequest("websocket expected");
    }
    var source = ctx.Request.Query["source"].ToString();
    var meta = ctx.Request.Query["meta"].ToString() is "1" or "true";
    using var ws = await ctx.WebSockets.AcceptWebSocketAsync();
    using var cts = CancellationTokenSource.CreateLinkedTokenSource(stopping, ctx.RequestAborted);
    await relay.ServeViewerAsync(ws, string.IsNullOrEmpty(source) ? null : source, meta, cts.Token);
    return Results.Empty;
});

await app.RunAsync();
