using System.Text.Json;
using Blankend.Orleans.Configuration;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Hosting;

/// <summary>
/// Loads <c>config/blankend.json</c> and the environment overrides, in this order of precedence (last wins):
/// the file, plain .NET environment keys (<c>stream__jpeg_quality</c>), the contract's variables
/// (<see cref="BlankendEnvironment"/>), the command line (<c>--stream:jpeg_quality=90</c>).
/// </summary>
public static class BlankendConfiguration
{
    public static readonly string[] KnownSections =
    [
        StreamOptions.Section,
        ClusterSettings.Section,
        GatewaySettings.Section,
        VideoProcessingOptions.Section,
        RealtimePipelineOptions.Section,
        AiOptions.Section,
        TelemetryOptions.Section,
        CodecOptions.Section,
        RecordingOptions.Section,
        AuthOptions.Section,
        LimitsOptions.Section,
        // Standard .NET sections that may live in the same file.
        "Logging",
        "Kestrel",
        "Orleans",
        "AllowedHosts",
    ];

    public static string DefaultPath => Path.Combine(AppContext.BaseDirectory, "config", "blankend.json");

    /// <param name="config">The host builder's configuration.</param>
    /// <param name="args">Command-line arguments (re-added last so they win).</param>
    /// <param name="environment">Variables to read; the process environment when null (tests pass their own).</param>
    public static IConfigurationManager AddBlankendConfiguration(
        this IConfigurationManager config,
        string[] args,
        System.Collections.IDictionary? environment = null
    )
    {
        environment ??= Environment.GetEnvironmentVariables();
        var explicitPath = config["config"] ?? environment[BlankendEnvironment.ConfigFileVariable] as string;
        var path = Path.GetFullPath(string.IsNullOrWhiteSpace(explicitPath) ? DefaultPath : explicitPath);
        if (File.Exists(path))
        {
            CheckFile(path);
            config.Sources.Insert(
                0,
                new JsonConfigurationSource
                {
                    Path = Path.GetFileName(path),
                    Optional = false,
                    ReloadOnChange = false,
                    FileProvider = new PhysicalFileProvider(Path.GetDirectoryName(path)!),
                }
            );
        }
        else if (!string.IsNullOrWhiteSpace(explicitPath))
        {
            throw new BlankendConfigurationException([$"config file '{path}' does not exist"]);
        }

        config.AddInMemoryCollection(BlankendEnvironment.ToConfigKeys(environment));
        config.AddCommandLine(args);
        config["blankend:config_path"] = File.Exists(path) ? path : "(defaults)";
        return config;
    }

    /// <summary>Syntax and top-level section names, so that a typo ("strem") stops start-up naming it.</summary>
    private static void CheckFile(string path)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(
                File.ReadAllBytes(path),
                new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true }
            );
        }
        catch (JsonException e)
        {
            throw new BlankendConfigurationException([$"config file '{path}' is not valid JSON: {e.Message}"]);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new BlankendConfigurationException([$"config file '{path}' must hold a JSON object"]);
            var unknown = doc
                .RootElement.EnumerateObject()
                .Select(p => p.Name)
                .Where(n => !KnownSections.Contains(n, StringComparer.OrdinalIgnoreCase))
                .Select(n => $"config file '{path}': unknown section '{n}' (known: {string.Join(", ", KnownSections)})")
                .ToList();
            if (unknown.Count > 0)
                throw new BlankendConfigurationException(unknown);
        }
    }

    /// <summary>Binds every section (unknown keys are errors) and validates it when the host starts.</summary>
    public static IServiceCollection AddBlankendOptions(this IServiceCollection services, IConfiguration config)
    {
        CheckKnownKeys(config);
        Add<StreamOptions, StreamOptionsValidator>(services, config, StreamOptions.Section);
        Add<ClusterSettings, ClusterSettingsValidator>(services, config, ClusterSettings.Section);
        Add<GatewaySettings, GatewaySettingsValidator>(services, config, GatewaySettings.Section);
        Add<VideoProcessingOptions, VideoProcessingOptionsValidator>(services, config, VideoProcessingOptions.Section);
        Add<RealtimePipelineOptions, RealtimePipelineOptionsValidator>(
            services,
            config,
            RealtimePipelineOptions.Section
        );
        Add<AiOptions, AiOptionsValidator>(services, config, AiOptions.Section);
        Add<TelemetryOptions, TelemetryOptionsValidator>(services, config, TelemetryOptions.Section);
        Add<CodecOptions, CodecOptionsValidator>(services, config, CodecOptions.Section);
        Add<RecordingOptions, RecordingOptionsValidator>(services, config, RecordingOptions.Section);
        Add<AuthOptions, AuthOptionsValidator>(services, config, AuthOptions.Section);
        Add<LimitsOptions, LimitsOptionsValidator>(services, config, LimitsOptions.Section);
        return services;
    }

    private static void Add<TOptions, TValidator>(IServiceCollection services, IConfiguration config, string section)
        where TOptions : class
        where TValidator : class, IValidateOptions<TOptions>
    {
        if (
            services.Any(d =>
                d.ServiceType == typeof(IValidateOptions<TOptions>) && d.ImplementationType == typeof(TValidator)
            )
        )
            return;
        services.AddOptions<TOptions>().Bind(config.GetSection(section)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<TOptions>, TValidator>();
    }

    private static readonly (string Section, Type Type)[] Sections =
    [
        (StreamOptions.Section, typeof(StreamOptions)),
        (ClusterSettings.Section, typeof(ClusterSettings)),
        (GatewaySettings.Section, typeof(GatewaySettings)),
        (VideoProcessingOptions.Section, typeof(VideoProcessingOptions)),
        (RealtimePipelineOptions.Section, typeof(RealtimePipelineOptions)),
        (AiOptions.Section, typeof(AiOptions)),
        (TelemetryOptions.Section, typeof(TelemetryOptions)),
        (CodecOptions.Section, typeof(CodecOptions)),
        (RecordingOptions.Section, typeof(RecordingOptions)),
        (AuthOptions.Section, typeof(AuthOptions)),
        (LimitsOptions.Section, typeof(LimitsOptions)),
    ];

    /// <summary>
    /// Every key under a Blankend section must name a property (by its <c>[ConfigurationKeyName]</c>): a typo
    /// stops start-up naming it. Done here rather than with the binder's ErrorOnUnknownConfiguration, which
    /// ignores <c>[ConfigurationKeyName]</c> (dotnet/runtime#119114).
    /// </summary>
    public static void CheckKnownKeys(IConfiguration config)
    {
        var errors = new List<string>();
        foreach (var (section, type) in Sections)
            CheckKnownKeys(config.GetSection(section), section, type, errors);
        if (errors.Count > 0)
            throw new BlankendConfigurationException(errors);
    }

    /// <summary>The keys of one section; a nested options object (<c>cluster:tls</c>) is checked the same
    /// way.</summary>
    private static void CheckKnownKeys(IConfigurationSection section, string path, Type type, List<string> errors)
    {
        var known = type.GetProperties()
            .ToDictionary(
                p =>
                    p.GetCustomAttributes(typeof(ConfigurationKeyNameAttribute), false)
                        .OfType<ConfigurationKeyNameAttribute>()
                        .FirstOrDefault()
                        ?.Name
                    ?? p.Name,
                p => p.PropertyType,
                StringComparer.OrdinalIgnoreCase
            );
        foreach (var child in section.GetChildren())
        {
            if (!known.TryGetValue(child.Key, out var childType))
                errors.Add(
                    $"{path}:{child.Key} is not a known key (known: {string.Join(", ", known.Keys.Order(StringComparer.Ordinal))})"
                );
            else if (
                childType.IsClass
                && childType != typeof(string)
                && !typeof(System.Collections.IEnumerable).IsAssignableFrom(childType)
            )
                CheckKnownKeys(child, $"{path}:{child.Key}", childType, errors);
        }
    }

    /// <summary>
    /// Resolves every options section once, so that a bad value fails right after the host is built (one clear
    /// line from <see cref="BlankendStartup"/>) rather than inside the host's start (which logs a stack trace).
    /// ValidateOnStart stays registered for hosts built some other way (tests).
    /// </summary>
    public static void ValidateBlankendOptions(this IServiceProvider services)
    {
        _ = services.GetRequiredService<IOptions<StreamOptions>>().Value;
        _ = services.GetRequiredService<IOptions<ClusterSettings>>().Value;
        _ = services.GetRequiredService<IOptions<GatewaySettings>>().Value;
        _ = services.GetRequiredService<IOptions<VideoProcessingOptions>>().Value;
        _ = services.GetRequiredService<IOptions<RealtimePipelineOptions>>().Value;
        _ = services.GetRequiredService<IOptions<AiOptions>>().Value;
        _ = services.GetRequiredService<IOptions<TelemetryOptions>>().Value;
        _ = services.GetRequiredService<IOptions<CodecOptions>>().Value;
        _ = services.GetRequiredService<IOptions<RecordingOptions>>().Value;
        _ = services.GetRequiredService<IOptions<AuthOptions>>().Value;
        _ = services.GetRequiredService<IOptions<LimitsOptions>>().Value;
    }

    /// <summary>Reads a section right away (for settings needed while the host is being built), with the same
    /// binding rules and validation as at start-up.</summary>
    public static T Read<T, TValidator>(IConfiguration config, string section)
        where T : class, new()
        where TValidator : IValidateOptions<T>, new()
    {
        T value;
        try
        {
            CheckKnownKeys(config);
            value = config.GetSection(section).Get<T>() ?? new T();
        }
        catch (InvalidOperationException e)
        {
            throw new BlankendConfigurationException([e.Message]);
        }
        var result = new TValidator().Validate(null, value);
        if (result.Failed)
            throw new BlankendConfigurationException(result.Failures);
        return value;
    }
}
