// A small command-line parser for the replica's commands (`replica`, `trusted-counter`), so that the
// `themis-replica` binary links no ArgumentParser: its reflection-driven parsing and help generation kept
// about 350 kB of its code resident in every replica (README "Memory"). `themis` hands these commands their
// arguments unparsed, so both binaries accept exactly the same flags, defined once below.

/// One `--name <value>` option or `--name` flag of a command.
public struct CommandLineOption: Sendable {
    public let name: String
    /// False for a flag (`--first-start`); true for `--name value` (shown as `--name <name>` in the help).
    public let takesValue: Bool
    public let help: String

    /// An option with a value.
    public init(_ name: String, help: String) {
        self.init(name, takesValue: true, help: help)
    }

    /// A flag (no value).
    public static func flag(_ name: String, help: String) -> CommandLineOption {
        CommandLineOption(name, takesValue: false, help: help)
    }

    private init(_ name: String, takesValue: Bool, help: String) {
        self.name = name
        self.takesValue = takesValue
        self.help = help
    }
}

/// Why arguments were refused, or `--help`. `description` is one line for the user.
public enum CommandLineError: Error, Equatable, CustomStringConvertible {
    case helpRequested
    case unknownOption(String)
    case missingValue(option: String)
    case missingOption(option: String)
    case invalidValue(option: String, value: String, expected: String)
    case unexpectedArgument(String)

    public var description: String {
        switch self {
        case .helpRequested: "help requested"
        case .unknownOption(let option): "unknown option '\(option)'"
        case .missingValue(let option): "missing value for '--\(option)'"
        case .missingOption(let option): "missing expected option '--\(option)'"
        case .invalidValue(let option, let value, let expected): "invalid value '\(value)' for '--\(option)': expected \(expected)"
        case .unexpectedArgument(let argument): "unexpected argument '\(argument)'"
        }
    }
}

/// A command's arguments, parsed against its options: later occurrences of an option replace earlier ones.
public struct ParsedOptions: Sendable {
    var values: [String: String] = [:]
    var flags: Set<String> = []

    /// Parses `--name value`, `--name=value` and `--name` (flags); `-h` and `--help` throw `.helpRequested`. In the
    /// `--name value` form a value starting with `-` is refused (`.missingValue`): give it as `--name=value`.
    public init(_ arguments: [String], options: [CommandLineOption]) throws(CommandLineError) {
        var byName: [String: CommandLineOption] = [:]
        for option in options { byName[option.name] = option }
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "-h" || argument == "--help" { throw .helpRequested }
            guard argument.hasPrefix("--"), argument.count > 2 else { throw .unexpectedArgument(argument) }
            var name = String(argument.dropFirst(2))
            var inline: String?
            if let equals = name.firstIndex(of: "=") {
                inline = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            guard let option = byName[name] else { throw .unknownOption("--\(name)") }
            guard option.takesValue else {
                guard inline == nil else { throw .invalidValue(option: name, value: inline ?? "", expected: "no value (a flag)") }
                flags.insert(name)
                continue
            }
            if let inline {
                values[name] = inline
            } else {
                // As ArgumentParser: a next word that looks like an option is not taken as the value (`--data-dir
                // $UNSET --first-start` must not make a directory named --first-start); `--name=-x` passes one.
                guard index < arguments.count, !arguments[index].hasPrefix("-") else { throw .missingValue(option: name) }
                values[name] = arguments[index]
                index += 1
            }
        }
    }

    public func string(_ name: String) -> String? { values[name] }

    public func required(_ name: String) throws(CommandLineError) -> String {
        guard let value = values[name] else { throw .missingOption(option: name) }
        return value
    }

    public func flag(_ name: String) -> Bool { flags.contains(name) }

    /// The option's value as an integer of type `T`, nil if absent.
    public func integer<T: FixedWidthInteger>(_ name: String, as type: T.Type = T.self) throws(CommandLineError) -> T? {
        guard let text = values[name] else { return nil }
        guard let value = T(text) else {
            throw .invalidValue(option: name, value: text, expected: "an integer in \(T.min)...\(T.max)")
        }
        return value
    }
}

/// The help text of a command: usage line, abstract, then every option with its help wrapped to 80 columns.
public func commandHelp(usage: String, abstract: String, options: [CommandLineOption]) -> String {
    var lines = ["OVERVIEW: \(abstract)", "", "USAGE: \(usage)", "", "OPTIONS:"]
    let indent = String(repeating: " ", count: 28)
    for option in options + [CommandLineOption.flag("help", help: "Show help information.")] {
        let head = "  --\(option.name)" + (option.takesValue ? " <\(option.name)>" : "")
        var words = option.help.split(separator: " ").map(String.init)
        var line = head.count < indent.count - 1 ? head + String(repeating: " ", count: indent.count - head.count) : head
        if head.count >= indent.count - 1 {
            lines.append(line)
            line = indent
        }
        var first = true
        while !words.isEmpty {
            let word = words.removeFirst()
            if !first, line.count + 1 + word.count > 80 {
                lines.append(line)
                line = indent + word
            } else {
                line += (first ? "" : " ") + word
            }
            first = false
        }
        lines.append(line)
    }
    return lines.joined(separator: "\n")
}
