namespace TruthProbe.Training;

/// <summary>One named tensor inside a <see cref="ParameterSet"/>; frozen tensors get no gradient and no update.</summary>
public sealed record ParameterTensor(string Name, int[] Shape, int Offset, int Length, bool Trainable);

/// <summary>
/// Every parameter of a model in one flat array, with a gradient array of the same layout: the optimizer,
/// gradient clipping and zeroing walk one span, and each layer reads its tensors as slices by name.
/// </summary>
public sealed class ParameterSet
{
    private readonly List<ParameterTensor> _tensors = [];
    private readonly Dictionary<string, int> _index = new(StringComparer.Ordinal);
    private float[] _values = [];
    private float[] _grads = [];

    public IReadOnlyList<ParameterTensor> Tensors => _tensors;
    public float[] Values => _values;
    public float[] Grads => _grads;

    /// <summary>Adds a zero-filled tensor and returns its index.</summary>
    public int Add(string name, int[] shape, bool trainable = true)
    {
        if (_index.ContainsKey(name)) throw new ArgumentException($"duplicate parameter '{name}'");
        int length = shape.Aggregate(1, (a, b) => checked(a * b));
        int offset = _values.Length;
        Array.Resize(ref _values, offset + length);
        Array.Resize(ref _grads, offset + length);
        _tensors.Add(new ParameterTensor(name, shape, offset, length, trainable));
        _index[name] = _tensors.Count - 1;
        return _tensors.Count - 1;
    }

    public int IndexOf(string name) => _index.TryGetValue(name, out int i) ? i : throw new KeyNotFoundException($"no parameter '{name}'");
    public bool Contains(string name) => _index.ContainsKey(name);

    public Span<float> Value(int index) => _values.AsSpan(_tensors[index].Offset, _tensors[index].Length);
    public Span<float> Grad(int index) => _grads.AsSpan(_tensors[index].Offset, _tensors[index].Length);
    public Span<float> Value(string name) => Value(IndexOf(name));
    public bool IsTrainable(int index) => _tensors[index].Trainable;

    public void SetTrainable(Func<ParameterTensor, bool> trainable)
    {
        for (int i = 0; i < _tensors.Count; i++) _tensors[i] = _tensors[i] with { Trainable = trainable(_tensors[i]) };
    }

    public void ZeroGrads() => Array.Clear(_grads);

    public long TrainableCount => _tensors.Where(t => t.Trainable).Sum(t => (long)t.Length);
}
