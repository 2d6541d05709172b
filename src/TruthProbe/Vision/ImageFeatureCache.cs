namespace TruthProbe.Vision;

/// <summary>
/// The projector outputs of the last few images, so that every prompt about an image reuses one encoding (at
/// LLaVA-1.5-7B shapes, estimated from them: 0.37 TFLOP and 9.4 MB of features per image, beside about 8 TFLOP for
/// the prompt's prefill). Consecutive rows about one image, as RLHF-V's are, hit. Least recently used entries are dropped past
/// <see cref="Capacity"/>, and their buffers reused, so memory stays at Capacity x features.
/// </summary>
/// <param name="state">whose vision buffers encode (its decoder cache is untouched, so the caller may run prompts on it).</param>
public sealed class ImageFeatureCache(LlavaModel model, LlavaState state, int capacity = 4)
{
    private readonly LinkedList<(string Key, float[] Features)> _entries = [];

    public int Capacity { get; } = capacity > 0 ? capacity : throw new ArgumentOutOfRangeException(nameof(capacity), "at least one image");

    /// <summary>Encodings computed so far (a hit costs none).</summary>
    public int Encodings { get; private set; }

    /// <summary>
    /// The features [image tokens, d_model] of the image <paramref name="key"/> names (its content hash and how it was
    /// preprocessed), encoded from <paramref name="image"/> on a miss; valid until <see cref="Capacity"/> other images
    /// have been asked for since. LLaVA-NeXT: the image's rows at the start of a buffer that may be longer (see
    /// <see cref="LlavaModel.ForwardEncoded"/>), since its token count depends on the image's size.
    /// </summary>
    public float[] Get(string key, Func<LlavaImage> image)
    {
        for (var node = _entries.First; node != null; node = node.Next)
            if (node.Value.Key == key)
            {
                _entries.Remove(node);
                _entries.AddFirst(node);
                return node.Value.Features;
            }
        float[]? evicted = null;
        if (_entries.Count == Capacity)
        {
            evicted = _entries.Last!.Value.Features;
            _entries.RemoveLast();
        }
        var prepared = image();
        var encoded = model.EncodeImage(state, prepared.Pixels, imageSize: prepared.Size);
        // LLaVA-1.5's images all take one length; a LLaVA-NeXT image may need more rows than the one it evicts.
        float[] features = evicted != null && evicted.Length >= encoded.Length ? evicted : new float[encoded.Length];
        encoded.CopyTo(features);
        Encodings++;
        _entries.AddFirst((key, features));
        return features;
    }
}
