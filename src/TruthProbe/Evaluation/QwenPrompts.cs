namespace TruthProbe.Evaluation;

/// <summary>
/// Qwen2.5-VL's and the Qwen2.5-Omni thinker's chat templates (their <c>chat_template</c>) for one user turn holding an
/// image item then a text item, as lmms-eval's <c>qwen2_5_vl</c> wrapper builds its messages. A system turn always comes
/// first: Qwen2.5-VL's default "You are a helpful assistant." (the template inserts it), the Omni thinker's own long
/// system prompt (its model card's; the template's default is the short one). Probing renders
/// <c>[user: {image, question}, assistant: answer]</c> without a generation prompt, so the sequence ends
/// <c>{answer}&lt;|im_end|&gt;\n</c> and the scored token is that final newline; evaluation prompts end with the
/// generation prompt <c>&lt;|im_start|&gt;assistant\n</c>.
/// </summary>
public static class QwenPrompts
{
    public const string VlSystem = "You are a helpful assistant.";
    public const string OmniSystem = "You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, " +
                                     "capable of perceiving auditory and visual inputs, as well as generating text and speech.";
    public static string System(bool omni) => omni ? OmniSystem : VlSystem;

    /// <summary>The image item as each template writes it; the processor expands the middle token to the image's token count.</summary>
    public static string ImageItem(bool omni) => omni ? "<|vision_bos|><|IMAGE|><|vision_eos|>" : "<|vision_start|><|image_pad|><|vision_end|>";

    /// <summary>
    /// System turn, the user turn (the image item when <paramref name="image"/>, then <paramref name="text"/>), then the
    /// assistant turn: closed around <paramref name="answer"/>, or the open generation prompt when it is null.
    /// </summary>
    public static string Chat(bool omni, bool image, string text, string? answer)
    {
        string head = $"<|im_start|>system\n{System(omni)}<|im_end|>\n<|im_start|>user\n{(image ? ImageItem(omni) : "")}{text}<|im_end|>\n<|im_start|>assistant\n";
        return answer == null ? head : head + answer + "<|im_end|>\n";
    }

    /// <summary>A POPE question with lmms-eval's post prompt "\nAnswer the question using a single word or phrase.", generation prompt open.</summary>
    public static string Pope(bool omni, string question) => Chat(omni, true, LlavaPrompts.WithShortAnswer(question), null);

    public static string Chair(bool omni) => Chat(omni, true, LlavaPrompts.DescribeInDetail, null);
}
