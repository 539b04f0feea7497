"""Speech in and out: transcription priced per minute of audio, speech per 1,000 characters."""
