"""The monitor application: live session model, feeds, screen, recording, export and plots."""
