using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Blankend.Orleans.Tests.Support;

/// <summary>Self-signed CAs and the leaf certificates they sign, made at run time (ECDSA P-256: fast), written
/// into a temporary folder as PEM and PKCS#12 files for the cluster TLS tests. Deleted on dispose.</summary>
public sealed class TestCertificates : IDisposable
{
    public const string ServerAuth = "1.3.6.1.5.5.7.3.1";
    public const string ClientAuth = "1.3.6.1.5.5.7.3.2";

    public string Folder { get; } = Directory.CreateTempSubdirectory("blankend-tls-").FullName;

    public string Path(string name) => System.IO.Path.Combine(Folder, name);

    /// <summary>A CA certificate (with its key) valid from 30 days ago for a year, unless told otherwise.</summary>
    public static X509Certificate2 CreateCa(string name, DateTimeOffset? notAfter = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(
            new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true)
        );
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        return request.CreateSelfSigned(now.AddDays(-30), notAfter ?? now.AddYears(1));
    }

    /// <summary>A leaf certificate (with its key) signed by <paramref name="ca"/>; <paramref name="usages"/> are the
    /// extended key usages (none: no such extension).</summary>
    public static X509Certificate2 CreateLeaf(
        X509Certificate2 ca,
        string name,
        string[] usages,
        DateTimeOffset? notBefore = null,
        DateTimeOffset? notAfter = null
    )
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        if (usages.Length > 0)
        {
            var oids = new OidCollection();
            foreach (var u in usages)
                oids.Add(new Oid(u));
            request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(oids, false));
        }
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false));
        var now = DateTimeOffset.UtcNow;
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f;
        using var signed = request.Create(ca, notBefore ?? now.AddDays(-1), notAfter ?? now.AddDays(30), serial);
        return signed.CopyWithPrivateKey(key);
    }

    /// <summary>The certificate alone, PEM.</summary>
    public string WriteCertificatePem(X509Certificate2 certificate, string name)
    {
        var path = Path(name);
        File.WriteAllText(path, certificate.ExportCertificatePem());
        return path;
    }

    /// <summary>The PKCS#8 private key, PEM (encrypted with <paramref name="password"/> when given).</summary>
    public string WriteKeyPem(X509Certificate2 certificate, string name, string? password = null)
    {
        using var key = certificate.GetECDsaPrivateKey()
            ?? throw new InvalidOperationException("not an ECDSA certificate with a key");
        var path = Path(name);
        File.WriteAllText(
            path,
            password is null
                ? key.ExportPkcs8PrivateKeyPem()
                : key.ExportEncryptedPkcs8PrivateKeyPem(
                    password,
                    new PbeParameters(PbeEncryptionAlgorithm.Aes256Cbc, HashAlgorithmName.SHA256, 10_000)
                )
        );
        return path;
    }

    /// <summary>Certificate and key in one PKCS#12 file.</summary>
    public string WritePfx(X509Certificate2 certificate, string name, string? password)
    {
        var path = Path(name);
        File.WriteAllBytes(path, certificate.Export(X509ContentType.Pfx, password));
        return path;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException) { }
    }
}
