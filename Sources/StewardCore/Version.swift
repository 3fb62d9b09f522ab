/// The release of this build: `steward --version`, `/health`, the start log line.
public enum StewardVersion {
    public static let current = "0.2.0"
}
