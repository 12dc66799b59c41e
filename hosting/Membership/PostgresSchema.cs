using System.Data.Common;
using Microsoft.Extensions.Logging;
using Npgsql;
using Orleans.Runtime;

namespace Blankend.Orleans.Hosting;

/// <summary>
/// <c>cluster.clustering=postgres</c>: makes sure the database holds the schema the Orleans ADO.NET providers need
/// (<c>deploy/sql/postgresql/blankend-orleans.sql</c>, embedded in this assembly) before the silo's membership and
/// grain storage start. When the <c>OrleansQuery</c> table exists nothing is changed (a schema created by a DBA,
/// possibly with Orleans' own scripts of the same release, is used as it is); otherwise the script runs in one
/// transaction under an advisory lock, so silos starting together create it once. Waits (retrying every second) while
/// the database is unreachable, like the Redis mode does.
/// </summary>
public sealed partial class PostgresSchema(string connectionString, ILogger<PostgresSchema> log)
    : ILifecycleParticipant<ISiloLifecycle>
{
    public const string ResourceName = "blankend-orleans.sql";

    /// <summary>Advisory lock key ("blankend" in ASCII) shared by every process creating the schema.</summary>
    private const long LockKey = 0x626c616e6b656e64;

    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(
            nameof(PostgresSchema),
            ServiceLifecycleStage.First,
            ct => EnsureAsync(connectionString, log, ct),
            _ => Task.CompletedTask
        );

    /// <summary>The schema script's text.</summary>
    public static string Script()
    {
        using var stream = typeof(PostgresSchema).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException(
                $"embedded resource {ResourceName} is missing from the silo assembly"
            );
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    /// <summary>Creates the schema when absent; true when it created it.</summary>
    public static async Task<bool> EnsureAsync(string connectionString, ILogger log, CancellationToken ct)
    {
        var attempt = 0;
        while (true)
        {
            try
            {
                return await EnsureOnceAsync(connectionString, log, ct).ConfigureAwait(false);
            }
            catch (Exception e)
                when (e is NpgsqlException or DbException or TimeoutException && !ct.IsCancellationRequested)
            {
                // insufficient_privilege: retrying will not help
                if (e is PostgresException pg && pg.SqlState is "42501")
                {
                    throw new InvalidOperationException(
                        $"cluster:postgres: the Orleans schema is missing and this user may not create it ({pg.MessageText}); "
                            + "run deploy/sql/postgresql/blankend-orleans.sql (scripts/pg-init.sh) as the database owner",
                        e
                    );
                }
                if (attempt++ % 10 == 0)
                    LogWaiting(log, attempt, Blankend.Orleans.Configuration.SecretMask.Apply(e.Message));
                await Task.Delay(TimeSpan.FromSeconds(1), ct).ConfigureAwait(false);
            }
        }
    }

    private static async Task<bool> EnsureOnceAsync(string connectionString, ILogger log, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct).ConfigureAwait(false);
        if (await ExistsAsync(connection, ct).ConfigureAwait(false))
            return false;

        await using var tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
        await using (var lockCmd = new NpgsqlCommand($"SELECT pg_advisory_xact_lock({LockKey})", connection, tx))
            await lockCmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        if (await ExistsAsync(connection, ct, tx).ConfigureAwait(false))
            return false; // another silo was faster
        await using (var create = new NpgsqlCommand(Script(), connection, tx))
            await create.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        await tx.CommitAsync(ct).ConfigureAwait(false);
        LogCreated(log, connection.Database, connection.Host ?? "?");
        return true;
    }

    private static async Task<bool> ExistsAsync(
        NpgsqlConnection connection,
        CancellationToken ct,
        NpgsqlTransaction? tx = null
    )
    {
        await using var cmd = new NpgsqlCommand("SELECT to_regclass('orleansquery') IS NOT NULL", connection, tx);
        return (bool)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
    }

    [LoggerMessage(
        Level = LogLevel.Information,
        Message = "created the Orleans schema (membership, grain storage) in PostgreSQL database {Database} on {Host}"
    )]
    private static partial void LogCreated(ILogger log, string database, string host);

    [LoggerMessage(
        Level = LogLevel.Warning,
        Message = "PostgreSQL (cluster:postgres) not reachable yet (attempt {Attempt}): {Reason}; retrying every second"
    )]
    private static partial void LogWaiting(ILogger log, int attempt, string reason);
}
