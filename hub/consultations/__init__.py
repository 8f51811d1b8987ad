"""Remote video consultations (远程会商): rooms, membership, invitations, host controls."""
