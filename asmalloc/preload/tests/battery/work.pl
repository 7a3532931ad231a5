# Perl work for the battery: hashes, regular expressions, sort, sprintf,
# pack/unpack, Digest::MD5. Usage: work.pl CORPUS OUTPUT
use strict;
use warnings;
use Digest::MD5 qw(md5_hex);

my ($in, $out) = @ARGV;
open(my $fh, '<', $in) or die "$in: $!";
my $text = do { local $/; <$fh> };
close($fh);

my (%freq, %bylen, %next);
my @words = map { lc } ($text =~ /([A-Za-z]+)/g);
for my $i (0 .. $#words) {
    my $w = $words[$i];
    $freq{$w}++;
    push @{ $bylen{ length $w } }, $w;
    $next{$w}{ $words[$i + 1] }++ if $i < $#words;
}
my @sorted = sort { $freq{$b} <=> $freq{$a} || $a cmp $b } keys %freq;
(my $titled = $text) =~ s/\b(\w)(\w*)/\U$1\E$2/g;
my $packed = pack('N*', map { $freq{$_} } @sorted);
my @back = unpack('N*', $packed);
die "pack round trip" unless @back == @sorted;

open(my $oh, '>', $out) or die "$out: $!";
for my $w (@sorted) {
    my @follow = sort { $next{$w}{$b} <=> $next{$w}{$a} || $a cmp $b } keys %{ $next{$w} || {} };
    printf $oh "%s %d %s\n", $w, $freq{$w}, join(',', @follow[0 .. ($#follow < 2 ? $#follow : 2)]);
}
close($oh);

printf "%d words, %d distinct\n", scalar(@words), scalar(@sorted);
print "top: ", join(' ', map { "$_=$freq{$_}" } @sorted[0 .. 4]), "\n";
print "lengths: ", join(' ', map { "$_:" . scalar(@{ $bylen{$_} }) } (sort { $a <=> $b } keys %bylen)[0 .. 5]), "\n";
print "md5 titled: ", md5_hex($titled), "\n";
print "md5 packed: ", md5_hex($packed), "\n";
