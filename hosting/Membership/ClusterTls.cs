using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Blankend.Orleans.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Orleans.Configuration;
using Orleans.Connections.Security;

namespace Blankend.Orleans.Hosting;

/// <summary>
/// <c>cluster.tls</c>: mutual TLS on the cluster's connections with Orleans' own TLS support (<c>UseTls</c>), the
/// one place both a silo (<see cref="ClusterMembership.UseBlankendMembership(ISiloBuilder, ClusterSettings)"/>) and
/// a client-mode gateway (<see cref="ClusterMembership.UseBlankendMembership(IClientBuilder, ClusterSettings)"/>)
/// get it from. A peer is accepted when its certificate chains to <c>cluster.tls.ca_certificate</c> (checked here
/// with that CA as the only trust anchor, not the system's store) and, when <c>cluster.tls.allowed_peers</c> is set,
/// matches one entry. Host names are not checked: silos reach each other by the addresses in the membership table,
/// so the CA (and the optional list) is what says who belongs to the cluster.
/// </summary>
internal static class ClusterTls
{
    public const string Key = "cluster:tls";

    private const string ServerAuthOid = "1.3.6.1.5.5.7.3.1";
    private const string ClientAuthOid = "1.3.6.1.5.5.7.3.2";

    /// <summary>Silo: TLS on silo-to-silo connections (both ways) and on the gateway port. No-op when off.</summary>
    public static ISiloBuilder UseBlankendTls(this ISiloBuilder silo, ClusterTlsSettings settings)
    {
        if (!settings.Enabled)
            return silo;
        var peers = new ClusterTlsPeers(Load(settings, clientOnly: false), settings.RequireClientCertificate);
        silo.Configure<SiloConnectionOptions>(o =>
        {
            // The connection pipelines are built once the silo's services exist: the refusals are logged from then on.
            o.ConfigureSiloInboundConnection(b => peers.UseServices(b.ApplicationServices));
            o.ConfigureGatewayInboundConnection(b => peers.UseServices(b.ApplicationServices));
            o.ConfigureSiloOutboundConnection(b => peers.UseServices(b.ApplicationServices));
        });
        silo.UseTls(peers.Material.Certificate, o =>
        {
            // Inbound: a peer must present a certificate unless require_client_certificate is off. Outbound (this
            // silo as TLS client of another silo): the certificate is always presented.
            o.RemoteCertificateMode = settings.RequireClientCertificate
                ? RemoteCertificateMode.RequireCertificate
                : RemoteCertificateMode.AllowCertificate;
            o.ClientCertificateMode = RemoteCertificateMode.RequireCertificate;
            o.RemoteCertificateValidation = peers.Validate;
            o.CheckCertificateRevocation = false;
        });
        return silo;
    }

    /// <summary>Client-mode gateway: TLS to the silos' gateway ports, presenting its certificate. No-op when
    /// off.</summary>
    public static IClientBuilder UseBlankendTls(this IClientBuilder client, ClusterTlsSettings settings)
    {
        if (!settings.Enabled)
            return client;
        var peers = new ClusterTlsPeers(Load(settings, clientOnly: true), requireClientCertificate: true);
        client.Configure<ClientConnectionOptions>(o =>
            o.ConfigureConnection(b => peers.UseServices(b.ApplicationServices))
        );
        client.UseTls(peers.Material.Certificate, o =>
        {
            o.RemoteCertificateMode = RemoteCertificateMode.RequireCertificate;
            o.ClientCertificateMode = RemoteCertificateMode.RequireCertificate;
            o.RemoteCertificateValidation = peers.Validate;
            o.CheckCertificateRevocation = false;
        });
        return client;
    }

    /// <summary>The start-up check of an enabled <c>cluster.tls</c>: one line per problem, each naming its setting
    /// (never a password). <paramref name="clientOnly"/>: a client-mode gateway, whose certificate only needs to
    /// allow TLS client authentication.</summary>
    public static List<string> Check(ClusterTlsSettings settings, bool clientOnly)
    {
        var errors = new List<string>();
        TryLoad(settings, clientOnly, errors)?.Dispose();
        return errors;
    }

    /// <summary>The certificate, the trust anchors and the allowed peers; a configuration error naming each bad
    /// setting.</summary>
    public static ClusterTlsMaterial Load(ClusterTlsSettings settings, bool clientOnly)
    {
        var errors = new List<string>();
        return TryLoad(settings, clientOnly, errors) ?? throw new BlankendConfigurationException(errors);
    }

    private static ClusterTlsMaterial? TryLoad(ClusterTlsSettings s, bool clientOnly, List<string> errors)
    {
        var certificate = LoadCertificate(s, clientOnly, errors);
        var (roots, intermediates) = LoadCa(s, errors);
        var (names, thumbprints) = ParsePeers(s.AllowedPeers, errors);
        if (string.IsNullOrWhiteSpace(s.CaCertificate) && names.Count + thumbprints.Count == 0)
            errors.Add(
                $"{Key}:ca_certificate is empty (the system's trust store), so {Key}:allowed_peers must name the peers (CN=name or a thumbprint): any certificate a public CA issued would be let in otherwise"
            );
        if (certificate is not null && roots.Count > 0)
        {
            var why = ClusterTlsPeers.ChainError(certificate, null, roots, intermediates);
            if (why is not null)
                errors.Add(
                    $"{Key}:certificate ('{s.Certificate}', {certificate.Subject}) does not chain to {Key}:ca_certificate ('{s.CaCertificate}'): {why}; the peers would refuse it"
                );
        }
        if (errors.Count > 0)
        {
            certificate?.Dispose();
            return null;
        }
        return new ClusterTlsMaterial(certificate!, roots, intermediates, names, thumbprints);
    }

    private static X509Certificate2? LoadCertificate(ClusterTlsSettings s, bool clientOnly, List<string> errors)
    {
        const string key = Key + ":certificate";
        if (string.IsNullOrWhiteSpace(s.Certificate))
        {
            errors.Add(
                $"{key} must name this process's certificate (a PKCS#12 .pfx/.p12 file, or a PEM file with {Key}:certificate_key) when {Key}:enabled is true"
            );
            return null;
        }
        if (!TryRead(key, s.Certificate, errors, out var bytes))
            return null;
        var password = string.IsNullOrEmpty(s.CertificatePassword) ? null : s.CertificatePassword;
        X509Certificate2 certificate;
        if (IsPem(bytes))
        {
            var keyName = string.IsNullOrWhiteSpace(s.CertificateKey) ? key : Key + ":certificate_key";
            var keyPath = string.IsNullOrWhiteSpace(s.CertificateKey) ? s.Certificate : s.CertificateKey;
            if (!TryRead(keyName, keyPath, errors, out var keyBytes))
                return null;
            var keyPem = Encoding.ASCII.GetString(keyBytes);
            if (!keyPem.Contains("PRIVATE KEY-----", StringComparison.Ordinal))
            {
                errors.Add(
                    keyName == key
                        ? $"{key}: '{s.Certificate}' has no private key (a PEM certificate needs its key in the same file or in {Key}:certificate_key)"
                        : $"{keyName}: '{keyPath}' holds no PEM private key (-----BEGIN PRIVATE KEY-----)"
                );
                return null;
            }
            var encrypted = keyPem.Contains("-----BEGIN ENCRYPTED PRIVATE KEY-----", StringComparison.Ordinal);
            if (encrypted && password is null)
            {
                errors.Add($"{keyName}: the private key in '{keyPath}' is encrypted; set {Key}:certificate_password");
                return null;
            }
            try
            {
                var certPem = Encoding.ASCII.GetString(bytes);
                certificate = encrypted
                    ? X509Certificate2.CreateFromEncryptedPem(certPem, keyPem, password)
                    : X509Certificate2.CreateFromPem(certPem, keyPem);
            }
            catch (CryptographicException e)
            {
                errors.Add(
                    $"{key}: '{s.Certificate}' with the key in '{keyPath}' cannot be loaded{(encrypted ? $" (or {Key}:certificate_password does not open the key)" : "")}: {SecretMask.Apply(e.Message)}"
                );
                return null;
            }
        }
        else
        {
            if (!string.IsNullOrWhiteSpace(s.CertificateKey))
            {
                errors.Add(
                    $"{Key}:certificate_key is only for a PEM certificate; '{s.Certificate}' is not PEM (a PKCS#12 file holds its own key)"
                );
                return null;
            }
            try
            {
                certificate = X509CertificateLoader.LoadPkcs12(bytes, password, X509KeyStorageFlags.EphemeralKeySet);
            }
            catch (CryptographicException e)
            {
                errors.Add(
                    $"{key}: '{s.Certificate}' is neither PEM nor a PKCS#12 file that {Key}:certificate_password opens: {SecretMask.Apply(e.Message)}"
                );
                return null;
            }
        }

        string? problem = null;
        if (!certificate.HasPrivateKey)
            problem = "has no private key";
        else if (certificate.NotAfter.ToUniversalTime() < DateTime.UtcNow)
            problem = $"expired on {certificate.NotAfter.ToUniversalTime():yyyy-MM-dd HH:mm} UTC";
        else if (certificate.NotBefore.ToUniversalTime() > DateTime.UtcNow)
            problem = $"is not valid before {certificate.NotBefore.ToUniversalTime():yyyy-MM-dd HH:mm} UTC";
        else if (certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().FirstOrDefault() is { } eku)
        {
            var usages = eku.EnhancedKeyUsages.Cast<Oid>().Select(o => o.Value).ToHashSet(StringComparer.Ordinal);
            if (!usages.Contains(ClientAuthOid) || (!clientOnly && !usages.Contains(ServerAuthOid)))
                problem = clientOnly
                    ? $"does not allow TLS client authentication (extended key usage {ClientAuthOid})"
                    : $"does not allow both TLS server and client authentication (extended key usage {ServerAuthOid} and {ClientAuthOid}, or none): a silo accepts and opens connections with it";
        }
        if (problem is null)
            return certificate;
        errors.Add($"{key}: '{s.Certificate}' ({certificate.Subject}) {problem}");
        certificate.Dispose();
        return null;
    }

    private static (X509Certificate2Collection Roots, X509Certificate2Collection Intermediates) LoadCa(
        ClusterTlsSettings s,
        List<string> errors
    )
    {
        const string key = Key + ":ca_certificate";
        X509Certificate2Collection roots = [],
            intermediates = [];
        if (string.IsNullOrWhiteSpace(s.CaCertificate))
            return (roots, intermediates);
        if (!TryRead(key, s.CaCertificate, errors, out var bytes))
            return (roots, intermediates);
        var all = new X509Certificate2Collection();
        try
        {
            if (IsPem(bytes))
                all.ImportFromPem(Encoding.ASCII.GetString(bytes));
            else
                all.Add(X509CertificateLoader.LoadCertificate(bytes));
        }
        catch (CryptographicException e)
        {
            errors.Add($"{key}: '{s.CaCertificate}' is not a PEM or DER certificate: {e.Message}");
            return (roots, intermediates);
        }
        if (all.Count == 0)
            errors.Add($"{key}: '{s.CaCertificate}' holds no certificate (-----BEGIN CERTIFICATE-----)");
        foreach (var c in all)
        {
            if (c.NotAfter.ToUniversalTime() < DateTime.UtcNow)
                errors.Add(
                    $"{key}: '{s.CaCertificate}' ({c.Subject}) expired on {c.NotAfter.ToUniversalTime():yyyy-MM-dd HH:mm} UTC"
                );
            if (c.SubjectName.RawData.AsSpan().SequenceEqual(c.IssuerName.RawData))
                roots.Add(c);
            else
                intermediates.Add(c);
        }
        if (all.Count > 0 && roots.Count == 0)
            errors.Add(
                $"{key}: '{s.CaCertificate}' holds no self-signed (root) CA certificate, only intermediates; add the root"
            );
        return (roots, intermediates);
    }

    private static (HashSet<string> Names, HashSet<string> Thumbprints) ParsePeers(
        string[] entries,
        List<string> errors
    )
    {
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var thumbprints = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var entry in AuthOptions.Flatten(entries))
        {
            if (entry.StartsWith("CN=", StringComparison.OrdinalIgnoreCase) && entry.Length > 3)
            {
                names.Add(entry[3..].Trim());
                continue;
            }
            var hex = entry.Replace(":", "", StringComparison.Ordinal).Replace(" ", "", StringComparison.Ordinal);
            if (hex.Length is 40 or 64 && hex.All(char.IsAsciiHexDigit))
                thumbprints.Add(hex);
            else
                errors.Add(
                    $"{Key}:allowed_peers: '{entry}' is neither CN=name nor a SHA-1 (40 hex digits) or SHA-256 (64 hex digits) thumbprint"
                );
        }
        return (names, thumbprints);
    }

    private static bool TryRead(string key, string path, List<string> errors, out byte[] bytes)
    {
        bytes = [];
        if (!File.Exists(path))
        {
            errors.Add($"{key}: file '{path}' does not exist");
            return false;
        }
        try
        {
            bytes = File.ReadAllBytes(path);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            errors.Add($"{key}: file '{path}' cannot be read: {e.Message}");
            return false;
        }
    }

    private static bool IsPem(ReadOnlySpan<byte> bytes) => bytes.IndexOf("-----BEGIN "u8) >= 0;
}

/// <summary>What an enabled <c>cluster.tls</c> loaded: this process's certificate (with its key), the CA
/// certificates peers must chain to (none: the system's store) and the allowed peers.</summary>
internal sealed class ClusterTlsMaterial(
    X509Certificate2 certificate,
    X509Certificate2Collection roots,
    X509Certificate2Collection intermediates,
    IReadOnlySet<string> names,
    IReadOnlySet<string> thumbprints
) : IDisposable
{
    public X509Certificate2 Certificate { get; } = certificate;
    public X509Certificate2Collection Roots { get; } = roots;
    public X509Certificate2Collection Intermediates { get; } = intermediates;

    /// <summary>Subject common names of <c>allowed_peers</c> (its <c>CN=</c> entries).</summary>
    public IReadOnlySet<string> Names { get; } = names;

    /// <summary>SHA-1 / SHA-256 thumbprints of <c>allowed_peers</c>, in hex.</summary>
    public IReadOnlySet<string> Thumbprints { get; } = thumbprints;

    public void Dispose()
    {
        Certificate.Dispose();
        foreach (var c in Roots)
            c.Dispose();
        foreach (var c in Intermediates)
            c.Dispose();
    }
}

/// <summary>The check of a peer's certificate during the TLS handshake (Orleans'
/// <see cref="TlsOptions.RemoteCertificateValidation"/>), and the log line of each refusal.</summary>
internal sealed partial class ClusterTlsPeers(ClusterTlsMaterial material, bool requireClientCertificate)
{
    private ILogger _log = NullLogger.Instance;
    private int _announced;

    public ClusterTlsMaterial Material { get; } = material;

    /// <summary>Takes the logger from the process's services (once Orleans builds its connection pipelines) and
    /// says once what TLS is on with.</summary>
    public void UseServices(IServiceProvider? services)
    {
        if (services?.GetService<ILoggerFactory>() is not { } factory || Interlocked.Exchange(ref _announced, 1) == 1)
            return;
        _log = factory.CreateLogger("Blankend.ClusterTls");
        var c = Material.Certificate;
        LogOn(
            _log,
            c.Subject,
            c.Thumbprint,
            c.NotAfter.ToUniversalTime(),
            Material.Roots.Count == 0
                ? "the system's trust store"
                : string.Join(" | ", Material.Roots.Cast<X509Certificate2>().Select(r => r.Subject)),
            Material.Names.Count + Material.Thumbprints.Count == 0
                ? "any"
                : $"{Material.Names.Count + Material.Thumbprints.Count} allowed",
            requireClientCertificate ? "required" : "optional"
        );
    }

    public bool Validate(X509Certificate2 certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        var why = Refusal(certificate, chain, errors);
        if (why is null)
            return true;
        LogRefused(_log, certificate.Subject, certificate.Thumbprint, why);
        return false;
    }

    /// <summary>Why a peer's certificate is refused, or null when it is accepted.</summary>
    public string? Refusal(X509Certificate2 certificate, X509Chain? presented, SslPolicyErrors errors)
    {
        if (Material.Roots.Count == 0)
        {
            // System trust: the platform's chain result stands (a name mismatch does not: peers are reached by IP).
            if (
                (
                    errors
                    & (SslPolicyErrors.RemoteCertificateChainErrors | SslPolicyErrors.RemoteCertificateNotAvailable)
                ) != 0
            )
                return $"it does not chain to a CA of the system's trust store ({Status(presented)})";
        }
        else if (ChainError(certificate, presented, Material.Roots, Material.Intermediates) is { } chainError)
        {
            return $"it does not chain to {ClusterTls.Key}:ca_certificate ({chainError})";
        }
        if (Material.Names.Count + Material.Thumbprints.Count > 0 && !Allowed(certificate))
            return $"it matches no entry of {ClusterTls.Key}:allowed_peers";
        return null;
    }

    private bool Allowed(X509Certificate2 certificate) =>
        Material.Thumbprints.Contains(certificate.Thumbprint)
        || Material.Thumbprints.Contains(Convert.ToHexString(certificate.GetCertHash(HashAlgorithmName.SHA256)))
        || Material.Names.Contains(certificate.GetNameInfo(X509NameType.SimpleName, forIssuer: false));

    /// <summary>Builds the chain of <paramref name="certificate"/> with <paramref name="roots"/> as the only trust
    /// anchors (custom root trust, no revocation check, nothing downloaded); null when it chains, else why
    /// not.</summary>
    public static string? ChainError(
        X509Certificate2 certificate,
        X509Chain? presented,
        X509Certificate2Collection roots,
        X509Certificate2Collection intermediates
    )
    {
        using var chain = new X509Chain();
        var policy = chain.ChainPolicy;
        policy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        policy.CustomTrustStore.AddRange(roots);
        policy.ExtraStore.AddRange(intermediates);
        if (presented is not null)
        {
            // Intermediates the peer sent with its certificate.
            policy.ExtraStore.AddRange(presented.ChainPolicy.ExtraStore);
            foreach (var element in presented.ChainElements)
                policy.ExtraStore.Add(element.Certificate);
        }
        policy.RevocationMode = X509RevocationMode.NoCheck;
        policy.DisableCertificateDownloads = true;
        return chain.Build(certificate) ? null : Status(chain);
    }

    private static string Status(X509Chain? chain) =>
        chain is null || chain.ChainStatus.Length == 0
            ? "no chain"
            : string.Join(", ", chain.ChainStatus.Select(s => s.Status).Distinct());

    [LoggerMessage(
        Level = LogLevel.Information,
        Message = "cluster TLS on: certificate {Subject} ({Thumbprint}, expires {NotAfter:yyyy-MM-dd} UTC), peers trusted through {Trust}, peer list: {Peers}, client certificates {ClientCertificates}"
    )]
    private static partial void LogOn(
        ILogger log,
        string subject,
        string thumbprint,
        DateTime notAfter,
        string trust,
        string peers,
        string clientCertificates
    );

    [LoggerMessage(
        Level = LogLevel.Warning,
        Message = "cluster TLS: refused the peer certificate {Subject} ({Thumbprint}): {Reason}"
    )]
    private static partial void LogRefused(ILogger log, string subject, string thumbprint, string reason);
}
