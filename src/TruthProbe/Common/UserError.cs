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
}
