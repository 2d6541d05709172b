using TruthProbe.Common;
using TruthProbe.Model;

namespace TruthProbe.Cli;

/// <summary>What the model verbs share: loading <c>&lt;model&gt; [--tokenizer FILE]</c> and turning
/// <c>--prompt TEXT</c> or <c>--token-ids 1,2,3</c> into token ids.</summary>
public static class ModelInput
{
    public const string Usage =
        "  <model>              a Hugging Face folder (config.json + safetensors), a .gguf, or a llama2.c .bin\n" +
        "  --tokenizer FILE     tokenizer.json, SentencePiece .model/.vocab or llama2.c tokenizer.bin (default: found with the model)\n";

    public static Transformer Load(Args args) => Transformer.Load(args.Positional(0, "<model> (a model folder or file)"), args.Get("tokenizer"));

    /// <summary>The prompt's ids, or null when neither option was given.</summary>
    public static int[]? PromptIds(Args args, Transformer model)
    {
        string? prompt = args.Get("prompt");
        int[]? ids = args.GetAll("token-ids").Count > 0 ? args.Ints("token-ids", []) : null;
        if (prompt != null && ids != null) throw new UserError($"{args.Verb}: give --prompt or --token-ids, not both");
        if (ids != null && ids.Length == 0) throw new UserError($"{args.Verb}: --token-ids is empty");
        return ids ?? (prompt != null ? model.Encode(prompt) : null);
    }
}
