using System.Collections.Concurrent;

namespace Blankend.Orleans.Grains.Ai.Runtime;

/// <summary>Working buffers a model reuses across calls: calls run on several threads at once, so each takes a set
/// of its own and gives it back. Disposing frees the idle sets.</summary>
internal sealed class BufferPool<T> : IDisposable
    where T : class, IDisposable
{
    private readonly ConcurrentBag<T> _idle = [];

    /// <summary>An idle set, or a new one.</summary>
    public T Rent(Func<T> create) => _idle.TryTake(out var b) ? b : create();

    /// <summary>An idle set, or a new one made from <paramref name="state"/> (a static lambda allocates
    /// nothing).</summary>
    public T Rent<TState>(TState state, Func<TState, T> create) => _idle.TryTake(out var b) ? b : create(state);

    public void Return(T buffers) => _idle.Add(buffers);

    public void Dispose()
    {
        while (_idle.TryTake(out var b))
            b.Dispose();
    }
}
