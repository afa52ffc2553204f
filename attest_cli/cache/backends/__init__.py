"""Cache backends behind one small interface (:mod:`.base`): local, redis, s3."""
