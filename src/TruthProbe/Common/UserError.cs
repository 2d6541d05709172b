namespace TruthProbe.Common;

/// <summary>
/// Bad input that a user can fix: the message names the file or field and says what is expected.
/// The CLI prints it on one line and exits with <see cref="ExitCode"/>; nothing else is a user error.
/// </summary>
public sealed class UserError : Exception
{
    public const int ExitCode = 2;

    public UserError(string message) : base(message) { }
    public UserError(string message, Exception inner) : base(message, inner) { }

    /// <summary>
    /// The input the message is about, by its snake_case name (<c>skip_first</c>, <c>tokenizer</c>), when
    /// it is one a caller chooses. The library names fields and files, never CLI flags; the CLI appends the
    /// option that sets this field (<c>(--skip-first)</c>) when the verb has one.
    /// </summary>
    public string? Field { get; init; }}
