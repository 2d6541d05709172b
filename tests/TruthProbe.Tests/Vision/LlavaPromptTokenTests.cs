using System.Text.Json.Nodes;
using TruthProbe.Tests.Common;
using TruthProbe.Tests.Tokenizers;
using TruthProbe.Tokenizers;

namespace TruthProbe.Tests.Vision;

/// <summary>The llava-1.5 prompt through a Llama-2 tokenizer with <c>&lt;image&gt;</c> = 32000 as an added token.</summary>
public sealed class LlavaPromptTokenTests
{
    [SkippableFact]
    public void Llava15Prompt_GivesThePublishedIds()
    {
        var llama2 = TokenizerLoader.FromFile(SharedData.Path("models", "llama2-tokenizer", "tokenizer.model")).Vocabulary;
        Assert.Equal(32000, llama2.Tokens.Length);
        using var dir = new TempDir();
        // llava-hf/llava-1.5-7b-hf's tokenizer.json: the legacy Llama-2 layout (Prepend("▁") + Replace normaliser)
        // with <image> a special added token that is not normalised.
        var json = HfJsonBuilder.LlamaStyle(llama2, metaspace: false, extraAdded: new JsonArray(HfJsonBuilder.Added(32000, "<image>")));
        string path = HfJsonBuilder.Write(dir.Path, json);
        var tokenizer = TokenizerLoader.FromFile(path);

        const string prompt = "USER: <image>\nWhat's the content of the image?\nASSISTANT:";
        // Published with the issue (transformers' LlavaProcessor before image-token expansion); the 29871 after
        // 32000 is legacy SentencePiece's dummy prefix on the segment that follows an added token.
        int[] expected = [1, 3148, 1001, 29901, 29871, 32000, 29871, 13, 5618, 29915, 29879, 278, 2793, 310, 278, 1967, 29973, 13, 22933, 9047, 13566, 29901];
        Assert.Equal(expected, tokenizer.Encode(prompt));
        using var hf = new global::Tokenizers.DotNet.Tokenizer(path);
        Assert.Equal(expected, hf.Encode(prompt).Select(id => (int)id).ToArray());
    }
}
