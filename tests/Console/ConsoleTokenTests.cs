using Blankend.Orleans.Tests.Support;
using Microsoft.Playwright;
using Xunit;

namespace Blankend.Orleans.Tests.Console;

/// <summary>
/// The console with tokens configured (contract v2 "Access control"): it asks for a token on 401, keeps it for
/// the tab, and a <c>view</c> token shows the controls disabled (the service refuses its POSTs with 403).
/// </summary>
[Trait(TestKind.Name, TestKind.Process)]
[Collection(ConsoleCollection.Name)]
public sealed class ConsoleTokenTests(ConsoleBrowser fixture)
{
    private static string[] TokenArgs() =>
        [
            "--auth:tokens:0:name=operator",
            "--auth:tokens:0:token=operator-secret-1",
            "--auth:tokens:0:scopes:0=admin",
            "--auth:tokens:1:name=watcher",
            "--auth:tokens:1:token=watcher-secret-1",
            "--auth:tokens:1:scopes:0=view",
        ];

    private static async Task EnterTokenAsync(IPage page, string token)
    {
        var dialog = page.Locator("#token-dialog[open]");
        await dialog.WaitForAsync(new LocatorWaitForOptions { Timeout = 15000 });
        await page.Locator("#token-input").FillAsync(token);
        await page.Locator("#token-ok").ClickAsync();
    }

    [Fact]
    public async Task TheConsoleAsksForATokenThenWorksAndAViewTokenCannotChangeSettings()
    {
        await using var gw = await EmbeddedGateway.StartAsync(TokenArgs());
        var (page, errors) = await fixture.NewPageAsync();

        // An admin token: asked once, then the sources page and the controls work.
        await page.GotoAsync(new Uri(gw.Http, "").ToString());
        await EnterTokenAsync(page, "operator-secret-1");
        await page.Locator("#sources-note:not(:text('Loading…'))").WaitForAsync();
        Assert.DoesNotContain(
            "unavailable",
            await page.Locator("#sources-note").TextContentAsync(),
            StringComparison.Ordinal
        );
        await page.GotoAsync(new Uri(gw.Http, "?page=controls").ToString());
        await page.Locator("#realtime-version:text('v')").WaitForAsync();
        Assert.False(await page.Locator("#realtime-form button[type=submit]").IsDisabledAsync());
        Assert.True(await page.Locator("#readonly-note").IsHiddenAsync());
        await page.Context.CloseAsync();

        // A view token: the controls are shown disabled, and the service itself refuses a change.
        var (viewPage, _) = await fixture.NewPageAsync();
        await viewPage.GotoAsync(new Uri(gw.Http, "?page=controls").ToString());
        await EnterTokenAsync(viewPage, "watcher-secret-1");
        await viewPage.Locator("#readonly-note:not(.hidden)").WaitForAsync();
        Assert.True(await viewPage.Locator("#realtime-form button[type=submit]").IsDisabledAsync());
        Assert.True(await viewPage.Locator("#record-start").IsDisabledAsync());
        var status = await viewPage.EvaluateAsync<int>(
            """
            async () => (await fetch('/api/v1/realtime_pipeline/config', { method: 'POST',
              headers: { 'Content-Type': 'application/json', 'Authorization': 'Bearer ' + sessionStorage.getItem('blankend.token') },
              body: '{"enabled":true}' })).status
            """
        );
        Assert.Equal(403, status);
        Assert.Empty(errors);
        await viewPage.Context.CloseAsync();
    }
}
