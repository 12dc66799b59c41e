using Microsoft.Extensions.Configuration;

namespace Blankend.Orleans.Configuration;

/// <summary>
/// Section <c>cluster.tls</c>: mutual TLS on the Orleans cluster's own connections (silo to silo, client-mode
/// gateway to silo), with Orleans' TLS support (<c>hosting/Membership/ClusterTls.cs</c>, docs/security.md). Off by
/// default; when on, every silo and client-mode gateway of the cluster must have it on (a plain-TCP peer is refused).
/// </summary>
public sealed class ClusterTlsSettings
{
    [ConfigurationKeyName("enabled")]
    public bool Enabled { get; set; }

    /// <summary>This process's certificate: a PKCS#12 file (<c>.pfx</c>/<c>.p12</c>, with its private key, opened
    /// with <see cref="CertificatePassword"/>) or a PEM certificate (its key in <see cref="CertificateKey"/>, or in
    /// the same file). Silos use it both as TLS server and as TLS client, so an extended key usage, when present,
    /// must allow both.</summary>
    [ConfigurationKeyName("certificate")]
    public string Certificate { get; set; } = "";

    /// <summary>PEM private key of a PEM <see cref="Certificate"/>; empty = the key is in the certificate
    /// file.</summary>
    [ConfigurationKeyName("certificate_key")]
    public string CertificateKey { get; set; } = "";

    /// <summary>Password of the PKCS#12 file, or of an encrypted PEM key; empty = none. Never logged.</summary>
    [ConfigurationKeyName("certificate_password")]
    public string CertificatePassword { get; set; } = "";

    /// <summary>PEM (or DER) file of the CA the peers' certificates must chain to (a PEM file may hold the CA and
    /// intermediates). Empty = the system's trust store, which then needs <see cref="AllowedPeers"/>.</summary>
    [ConfigurationKeyName("ca_certificate")]
    public string CaCertificate { get; set; } = "";

    /// <summary>Silos refuse a connecting peer (another silo or a gateway) that presents no certificate (mutual
    /// TLS). Off, such a peer is let in (the connection is still encrypted and the peer still checks the silo's
    /// certificate); a peer that presents one is checked either way.</summary>
    [ConfigurationKeyName("require_client_certificate")]
    public bool RequireClientCertificate { get; set; } = true;

    /// <summary>When not empty, a peer's certificate must also match one entry: <c>CN=name</c> (its subject common
    /// name) or a SHA-1 / SHA-256 thumbprint in hex. Comma lists are accepted
    /// (<c>BLANKEND_CLUSTER_TLS_ALLOWED_PEERS</c>).</summary>
    [ConfigurationKeyName("allowed_peers")]
    public string[] AllowedPeers { get; set; } = [];
}
